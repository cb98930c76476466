import { CachedValue } from './cached-value';

describe('CachedValue', () => {
  it('loads once per ttl, shares a load in flight, and retries after a failure', async () => {
    let now = 0;
    let loads = 0;
    let fail = false;
    const value = new CachedValue(
      1_000,
      async () => {
        loads += 1;
        if (fail) throw new Error('down');
        return loads;
      },
      () => now,
    );
    expect(await Promise.all([value.get(), value.get()])).toEqual([1, 1]);
    now = 999;
    expect(await value.get()).toBe(1);
    now = 1_000;
    expect(await value.get()).toBe(2);
    now = 5_000;
    fail = true;
    await expect(value.get()).rejects.toThrow('down');
    fail = false;
    expect(await value.get()).toBe(4);
    expect(loads).toBe(4);
  });
});
