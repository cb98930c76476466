import { KernelCapacity } from './kernel-capacity';

describe('KernelCapacity', () => {
  it('pauses the shared queue once held and admitting kernels fill it, resumes below, never while closed', () => {
    const paused: boolean[] = [];
    const capacity = new KernelCapacity(2, (p) => paused.push(p), () => undefined);
    capacity.admission(1, 1); // one held, one being admitted: full
    capacity.admission(-1, 2); // admitted: two held, still full (no change)
    capacity.update(1); // one went: room again
    capacity.update(2, true); // closing: never paused
    expect(paused).toEqual([true, false]);
  });
});
