import { FakeKernel, until } from './fake-kernel.spec-helper';
import { cullCheckIntervalMs } from './periodic-task';
import { KernelPool } from './kernel-pool';

const quietLog = { warn: jest.fn(), debug: jest.fn() };

describe('KernelPool', () => {
  const started: FakeKernel[] = [];
  const start = jest.fn(async () => {
    const kernel = new FakeKernel();
    started.push(kernel);
    return kernel;
  });
  beforeEach(() => {
    started.length = 0;
    start.mockClear();
  });

  it('fills to its size in the background, hands kernels out, and refills after each take', async () => {
    const pool = new KernelPool({ size: 2, start, log: quietLog });
    expect(pool.take()).toBeUndefined(); // nothing ready yet: a miss, never a wait
    await until(() => pool.readyCount === 2);
    expect(start).toHaveBeenCalledTimes(2);

    const taken = pool.take();
    expect(taken).toBe(started[0]);
    expect(pool.readyCount).toBe(1);
    await until(() => pool.readyCount === 2);
    expect(start).toHaveBeenCalledTimes(3);
    await pool.dispose();
    expect((taken as FakeKernel).shutDown).toBe(false); // the taker owns it
  });

  it('starts the replacement of a taken kernel refillDelayMs after the take, once for takes in a row', async () => {
    const pool = new KernelPool({ size: 2, start, log: quietLog, refillDelayMs: 150 });
    pool.start(); // filling at start is not delayed
    await until(() => pool.readyCount === 2);
    const takenAt = Date.now();
    pool.take();
    pool.take();
    expect(pool.take()).toBeUndefined();
    await new Promise((r) => setTimeout(r, 75));
    expect(start).toHaveBeenCalledTimes(2); // nothing competes with the takers' first cells yet
    await until(() => pool.readyCount === 2);
    expect(Date.now() - takenAt).toBeGreaterThanOrEqual(140);
    expect(start).toHaveBeenCalledTimes(4);
    await pool.dispose();
  });

  it('with size 0 never starts a kernel', async () => {
    const pool = new KernelPool({ size: 0, start, log: quietLog });
    pool.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(pool.take()).toBeUndefined();
    expect(start).not.toHaveBeenCalled();
  });

  it('logs a failed start and retries with growing backoff', async () => {
    const log = { warn: jest.fn() };
    const attempts: number[] = [];
    const failing = jest.fn(async () => {
      attempts.push(Date.now());
      if (attempts.length <= 3) throw new Error('server busy');
      return new FakeKernel();
    });
    const pool = new KernelPool({ size: 1, start: failing, log, initialBackoffMs: 20, maxBackoffMs: 1_000 });
    pool.start();
    await until(() => pool.readyCount === 1);
    expect(failing).toHaveBeenCalledTimes(4);
    expect(log.warn).toHaveBeenCalledTimes(3);
    expect(log.warn.mock.calls[0][0]).toMatch(/pool kernel start failed \(retry in 20 ms\): server busy/);
    expect(log.warn.mock.calls[2][0]).toMatch(/retry in 80 ms/);
    expect(attempts[3] - attempts[2]).toBeGreaterThanOrEqual(75);
    await pool.dispose();
  });

  it('replaces a ready kernel that dies', async () => {
    const pool = new KernelPool({ size: 1, start, log: quietLog });
    pool.start();
    await until(() => pool.readyCount === 1);
    started[0].die();
    await until(() => started.length === 2 && pool.readyCount === 1);
    expect(pool.take()).toBe(started[1]);
    await pool.dispose();
  });

  it('on dispose shuts ready kernels down, and a start that lands afterwards too', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = jest.fn(async () => {
      if (slow.mock.calls.length === 2) await gate;
      return new FakeKernel();
    });
    const pool = new KernelPool({ size: 2, start: slow, log: quietLog });
    pool.start();
    await until(() => pool.readyCount === 1 && slow.mock.calls.length === 2);
    const ready = (pool as unknown as { ready: FakeKernel[] }).ready[0];
    await pool.dispose();
    expect(ready.shutDown).toBe(true);
    release();
    const late = (await slow.mock.results[1].value) as FakeKernel;
    await until(() => late.shutDown);
    expect(slow).toHaveBeenCalledTimes(2);
  });

  it('when the server is gone, drops its kernels without a REST shutdown and refills', async () => {
    const pool = new KernelPool({ size: 1, start, log: quietLog });
    pool.start();
    await until(() => pool.readyCount === 1);
    pool.forget();
    expect(started[0].disposed).toBe(true);
    expect(started[0].shutDown).toBe(false);
    await until(() => pool.readyCount === 1);
    expect(pool.take()).toBe(started[1]);
    await pool.dispose();
  });
});

describe('cullCheckIntervalMs', () => {
  it('checks every quarter of the idle time, at most once a minute', () => {
    expect(cullCheckIntervalMs(1_500)).toBe(375);
    expect(cullCheckIntervalMs(30 * 60_000)).toBe(60_000);
  });
});
