import { StartSlots } from './start-slots';

describe('StartSlots', () => {
  it('lets `size` starts run at once and the rest in arrival order as slots come back', async () => {
    const slots = new StartSlots(2);
    const order: number[] = [];
    const takes = [1, 2, 3, 4].map((n) => slots.take().then((ok) => ok && order.push(n)));
    await Promise.resolve();
    expect(order).toEqual([1, 2]);
    expect(slots.queued).toBe(2);
    expect(slots.running).toBe(2);
    slots.release();
    await takes[2];
    expect(order).toEqual([1, 2, 3]);
    slots.release();
    await takes[3];
    expect(order).toEqual([1, 2, 3, 4]);
    expect(slots.queued).toBe(0);
    slots.release();
    slots.release();
    expect(slots.running).toBe(0);
  });

  it('gives up a wait at its deadline without taking a slot, and later waiters keep their turn', async () => {
    const slots = new StartSlots(1);
    expect(await slots.take()).toBe(true);
    const late = slots.take(Date.now() + 30);
    const patient = slots.take();
    expect(await late).toBe(false);
    slots.release();
    expect(await patient).toBe(true);
    slots.release();
    expect(await slots.take(Date.now())).toBe(true); // a free slot is taken even at the deadline
  });
});
