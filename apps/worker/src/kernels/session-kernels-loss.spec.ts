import { Logger } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import type { KernelHandle, StartKernelOptions } from '@kernelfleet/kernel';
import { FakeKernel, until } from './fake-kernel.spec-helper';
import type { SessionKernels } from './session-kernels';
import { makeSessionKernels, ref, type FakeSessions } from './session-kernels.spec-helper';

beforeAll(() => Logger.overrideLogger(false));

/** What the worker does with its kernels when Redis or the Jupyter server says they are gone. */
describe('SessionKernels: sessions taken away, disposed, or their server restarted', () => {
  let sessions: FakeSessions;
  let setSharedPaused: jest.Mock;
  let starts: FakeKernel[];
  let restartListeners: (() => void)[];
  let kernels: SessionKernels;

  function make(
    overrides: Partial<WorkerConfig['kernels']> = {},
    startKernel?: (opts: StartKernelOptions) => Promise<KernelHandle>,
    jupyterUrl?: string,
  ) {
    ({ kernels, sessions, setSharedPaused, starts, restartListeners } = makeSessionKernels(overrides, startKernel, jupyterUrl));
    return kernels;
  }
  afterEach(async () => {
    await kernels?.disposeAll();
  });

  it('releases a session whose kernel died while idle as dead once idle long enough', async () => {
    make({ idleMs: 1_000 });
    const a = ref('a');
    await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    await kernels.lose(a, 1);
    kernels.done(a);
    expect(kernels.size).toBe(1); // still homed here: its next execution comes back to this worker
    expect(await kernels.cullIdle(Date.now() + 1_000)).toBe(1);
    expect(sessions.releases).toEqual([['acme/a', 'dead']]);
  });

  it('does not reuse the kernel of a session a reaper took away: a fresh one, with the state loss said', async () => {
    make({ poolSize: 0 });
    const a = ref('a');
    const first = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    kernels.done(a);
    // Another worker's reaper released the session while this worker's lease had lapsed.
    await sessions.release(a, 'w1', 'lost');

    const next = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    expect(next.handle).not.toBe(first.handle);
    expect(next.info).toEqual({ workerId: 'w1', generation: 2, stateLost: true, stateLostReason: 'lost', restarted: true });
    expect((first.handle as FakeKernel).shutDown).toBe(true);
    expect(kernels.size).toBe(1);
  });

  it('discard: a kernel started while its session was disposed goes, and the session is released as none', async () => {
    make({ poolSize: 0 });
    const a = ref('a');
    const started = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    await kernels.discard(a, started.info.generation + 1); // another generation: left alone
    expect((started.handle as FakeKernel).shutDown).toBe(false);
    await kernels.discard(a, started.info.generation);
    expect((started.handle as FakeKernel).shutDown).toBe(true);
    expect(started.disposed?.aborted).toBe(true);
    expect(kernels.size).toBe(0);
    expect(kernels.disposed.start).toBe(1);
    expect(sessions.releases).toEqual([['acme/a', 'none']]);
  });

  it('reconcile: a kernel whose session was disposed is shut down at once and its execution told; the others stay', async () => {
    make({ poolSize: 0 });
    const [a, b] = [ref('a'), ref('b')];
    const held = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    const other = await kernels.acquire(b, { reset: false, startTimeoutMs: 5_000 });
    kernels.done(b);
    expect(await kernels.reconcile()).toBe(0);

    // Disposed in Redis while an execution holds the kernel (inUse): nothing waits for it.
    sessions.unhome(a);
    expect(held.disposed?.aborted).toBe(false);
    expect(await kernels.reconcile()).toBe(1);
    expect(held.disposed?.aborted).toBe(true);
    expect((held.handle as FakeKernel).shutDown).toBe(true);
    expect((other.handle as FakeKernel).shutDown).toBe(false);
    expect(other.disposed?.aborted).toBe(false);
    expect(kernels.size).toBe(1);
    expect(kernels.disposed).toEqual({ message: 0, reconcile: 1, acquire: 0, start: 0 });
    // Redis keeps what the disposal wrote.
    expect(await sessions.get(a)).toMatchObject({ workerId: null, kernel: { generation: 1, state: 'none' } });
    expect(sessions.releases).toEqual([]);

    // The next execution: a fresh kernel, the next generation, no state loss (it was asked for).
    kernels.done(a);
    const next = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    expect(next.handle).not.toBe(held.handle);
    expect(next.info).toEqual({ workerId: 'w1', generation: 2, stateLost: false, restarted: true });
  });

  it('reconcile of one session (the control message) touches only that one, and never a kernel started after the disposal', async () => {
    make({ poolSize: 0 });
    const [a, b] = [ref('a'), ref('b')];
    await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    const other = await kernels.acquire(b, { reset: false, startTimeoutMs: 5_000 });
    sessions.unhome(b);
    expect(await kernels.reconcile(a, 'message')).toBe(0);
    expect(await kernels.reconcile(ref('never-here'), 'message')).toBe(0);
    expect((other.handle as FakeKernel).shutDown).toBe(false);

    // A message that arrives late, after the next execution started a kernel: nothing to do.
    kernels.done(b);
    const fresh = await kernels.acquire(b, { reset: false, startTimeoutMs: 5_000 });
    expect(kernels.disposed.acquire).toBe(1);
    expect(await kernels.reconcile(b, 'message')).toBe(0);
    expect((fresh.handle as FakeKernel).shutDown).toBe(false);
    expect(fresh.info).toMatchObject({ generation: 2, stateLost: false });
  });

  it('a disposed session whose kernel had died here starts fresh without stateLost, and the old state is not written back', async () => {
    make({ poolSize: 0 });
    const a = ref('a');
    const first = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    kernels.done(a);
    (first.handle as FakeKernel).die();
    await until(() => kernels.liveSessionKernels === 0);
    sessions.unhome(a);
    // The run that saw it die reports it late: the disposal's state stays.
    await kernels.lose(a, 1);
    expect(await sessions.get(a)).toMatchObject({ workerId: null, kernel: { state: 'none' } });

    const next = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    expect(next.info).toEqual({ workerId: 'w1', generation: 2, stateLost: false, restarted: true });
  });

  it('on a Jupyter server restart forgets every kernel without REST calls and releases the sessions as lost', async () => {
    make({ maxKernels: 1 });
    kernels.start();
    await until(() => kernels.pooled === 1);
    const poolKernel = starts[0];
    const a = await kernels.acquire(ref('a'), { reset: false, startTimeoutMs: 5_000 });
    await until(() => kernels.pooled === 1);
    const refill = starts[1];
    expect(setSharedPaused.mock.calls).toEqual([[true]]);

    expect(restartListeners).toHaveLength(1);
    restartListeners[0]();
    await until(() => sessions.releases.length === 1);
    expect(a.handle).toBe(poolKernel);
    expect([poolKernel.disposed, poolKernel.shutDown]).toEqual([true, false]);
    expect([refill.disposed, refill.shutDown]).toEqual([true, false]);
    expect(sessions.releases).toEqual([['acme/a', 'lost']]);
    expect(kernels.size).toBe(0);
    expect(setSharedPaused.mock.calls).toEqual([[true], [false]]);
    await until(() => kernels.pooled === 1 && starts.length === 3);

    const next = await kernels.acquire(ref('a'), { reset: false, startTimeoutMs: 5_000 });
    expect(next.info).toMatchObject({ generation: 2, stateLost: true });
  });

  it('lets a start that finds our Jupyter server down wait for its restart, within the start budget', async () => {
    let serverUp = false;
    const start = async (opts: StartKernelOptions) => {
      if (!serverUp) throw new TypeError('fetch failed');
      const kernel = new FakeKernel(opts.cwd);
      starts.push(kernel);
      return kernel;
    };
    make({ poolSize: 0 }, start);
    const waiting = kernels.acquire(ref('a'), { reset: false, startTimeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 30));
    serverUp = true;
    restartListeners[0]();
    expect((await waiting).handle).toBe(starts[0]);

    make({ poolSize: 0 }, start);
    serverUp = false;
    const began = Date.now();
    await expect(kernels.acquire(ref('b'), { reset: false, startTimeoutMs: 100 })).rejects.toThrow('fetch failed');
    expect(Date.now() - began).toBeGreaterThanOrEqual(90);

    make({ poolSize: 0 }, start, 'http://jupyter.example:8888'); // an external server is not ours to wait for
    await expect(kernels.acquire(ref('c'), { reset: false, startTimeoutMs: 5_000 })).rejects.toThrow('fetch failed');
  });

  it('lets an acquire wait for a cull of the same session in progress, then start afresh', async () => {
    let finishShutdown!: () => void;
    make({ idleMs: 1_000, poolSize: 0 });
    const a = ref('a');
    const first = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    kernels.done(a);
    const handle = first.handle as FakeKernel;
    handle.shutdown = () => new Promise<void>((r) => (finishShutdown = () => ((handle.shutDown = true), r())));
    const culling = kernels.cullIdle(Date.now() + 1_000);
    const next = kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 20));
    expect(starts).toHaveLength(1); // waits for the cull
    finishShutdown();
    expect(await culling).toBe(1);
    expect((await next).info).toMatchObject({ generation: 2, stateLost: true });
    expect(await sessions.get(a)).toMatchObject({ workerId: 'w1' });
  });
});

