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

  it("keeps taking new sessions while full if it is the fleet's evictor", () => {
    const paused: boolean[] = [];
    const capacity = new KernelCapacity(2, (p) => paused.push(p), () => undefined);
    capacity.update(2); // full: paused
    capacity.setEvictor(true, 2); // holds the idle kernel to evict first: takes them again
    expect(capacity.isFull(2)).toBe(true);
    capacity.setEvictor(false, 2); // nothing left to evict
    capacity.update(1); // below capacity: takes them as usual
    expect(paused).toEqual([true, false, true, false]);
  });
});
