import { Logger } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import type { KernelHandle, StartKernelOptions } from '@kernelfleet/kernel';
import type { FleetStore, JobConsumer, KernelState, SessionInfo, SessionRef } from '@kernelfleet/store';
import type { JupyterService } from '../jupyter/jupyter.service';
import { FakeKernel, until } from './fake-kernel.spec-helper';
import { SessionKernels } from './session-kernels';


beforeAll(() => Logger.overrideLogger(false));


describe('SessionKernels', () => {
  const ref = (sessionId: string): SessionRef => ({ tenant: 'acme', sessionId });
  const key = (r: SessionRef) => `${r.tenant}/${r.sessionId}`;

  /** In-memory session bookkeeping with the semantics of SessionRepository. */
  class FakeSessions {
    readonly info = new Map<string, { generation: number; state: KernelState; home: string | null }>();
    readonly releases: [string, KernelState][] = [];
    async get(r: SessionRef): Promise<SessionInfo | null> {
      const i = this.info.get(key(r));
      return i ? { sessionId: r.sessionId, workerId: i.home, kernel: { generation: i.generation, state: i.state }, files: i.home ? 'kept' : 'none', pending: 0, lastActivityAt: 1 } : null;
    }
    async beginGeneration(r: SessionRef, workerId: string): Promise<number> {
      const i = this.info.get(key(r)) ?? { generation: 0, state: 'none' as KernelState, home: null };
      i.generation += 1;
      i.state = 'starting';
      i.home = workerId;
      this.info.set(key(r), i);
      return i.generation;
    }
    async setKernelState(r: SessionRef, workerId: string, generation: number, state: KernelState): Promise<boolean> {
      const i = this.info.get(key(r));
      if (!i || i.home !== workerId || i.generation !== generation) return false;
      i.state = state;
      return true;
    }
    async homesOf(refs: SessionRef[]): Promise<{ home: string | null; generation: number }[]> {
      return refs.map((r) => ({ home: this.info.get(key(r))?.home ?? null, generation: this.info.get(key(r))?.generation ?? 0 }));
    }
    /** What SessionDisposal writes (dispose-2.lua): no home, state `none`. */
    unhome(r: SessionRef): void {
      const i = this.info.get(key(r));
      if (i) Object.assign(i, { home: null, state: 'none' });
    }
    async pendingStateLoss(): Promise<null> {
      return null;
    }
    async setStateLossPending(): Promise<void> {}
    /** Every kernel in these tests ran code before it went away. */
    async latestKernelWasUsed(r: SessionRef): Promise<boolean> {
      return (this.info.get(key(r))?.generation ?? 0) > 0;
    }
    async isHeldBy(r: SessionRef, workerId: string, generation: number): Promise<boolean> {
      const i = this.info.get(key(r));
      return i?.home === workerId && i.generation === generation;
    }
    async release(r: SessionRef, workerId: string, state: KernelState): Promise<boolean> {
      this.releases.push([key(r), state]);
      const i = this.info.get(key(r));
      if (!i || i.home !== workerId) return false;
      i.home = null;
      i.state = state;
      return true;
    }
  }

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
    sessions = new FakeSessions();
    setSharedPaused = jest.fn();
    starts = [];
    restartListeners = [];
    const config = {
      workerId: 'w1',
      // No folder is ever touched: no such interpreter, no such root, and not the worker's own.
      jupyter: { url: jupyterUrl, python: '/nonexistent/python', rootDir: '/nonexistent/kernels', rootOwned: false },
      kernels: { interruptGraceMs: 5_000, startMaxMs: 5_000, maxKernels: 2, poolSize: 1, idleMs: 1_000, ...overrides },
    } as WorkerConfig;
    const jupyter = {
      client: {
        startKernel:
          startKernel ??
          (async (opts: StartKernelOptions) => {
            const kernel = new FakeKernel(opts.cwd);
            starts.push(kernel);
            return kernel;
          }),
      },
      onRestart: (listener: () => void) => restartListeners.push(listener),
    } as unknown as JupyterService;
    const store = { sessions, registry: { liveLeases: async () => [] } } as unknown as FleetStore;
    kernels = new SessionKernels(config, jupyter, store, { setSharedPaused } as unknown as JobConsumer);
    return kernels;
  }
  const pooled = () => starts.filter((k) => k.cwd === undefined);
  afterEach(async () => {
    await kernels?.disposeAll();
  });

  it('gives a new session a pool kernel moved into the session folder, and refills the pool', async () => {
    make();
    kernels.start();
    await until(() => kernels.pooled === 1);
    const poolKernel = starts[0];

    const acquired = await kernels.acquire(ref('s.1'), { reset: false, startTimeoutMs: 5_000 });
    expect(acquired.handle).toBe(poolKernel);
    expect(acquired.info).toEqual({ workerId: 'w1', generation: 1, stateLost: false, restarted: true });
    // Two warm-up cells while it waited in the pool, then the move into the session folder.
    expect(poolKernel.executed).toEqual([
      'None',
      'None',
      `__import__('os').makedirs("acme/s%2E1", exist_ok=True); __import__('os').chdir("acme/s%2E1")`,
    ]);
    expect(starts.filter((k) => k.cwd !== undefined)).toHaveLength(0);
    await until(() => kernels.pooled === 1 && pooled().length === 2);
  });

  it('starts a kernel in the session folder when the pool is empty or its kernel cannot move', async () => {
    make({ poolSize: 0 });
    kernels.start();
    const cold = await kernels.acquire(ref('s1'), { reset: false, startTimeoutMs: 5_000 });
    expect((cold.handle as FakeKernel).cwd).toBe('acme/s1');
    await kernels.disposeAll();

    make();
    kernels.start();
    await until(() => kernels.pooled === 1);
    const broken = starts[0];
    broken.outcome = { status: 'error', ename: 'PermissionError', evalue: 'denied', traceback: [] };
    const replaced = await kernels.acquire(ref('s2'), { reset: false, startTimeoutMs: 5_000 });
    expect(broken.shutDown).toBe(true);
    expect(replaced.handle).not.toBe(broken);
    const kernel = replaced.handle as FakeKernel;
    // The next pool kernel (moved in) or a cold start in the folder.
    expect(kernel.cwd === 'acme/s2' || kernel.executed.some((code) => code.includes('chdir("acme/s2")'))).toBe(true);
  });

  it('takes per-call kernels from the pool too, without registering them', async () => {
    make();
    kernels.start();
    await until(() => kernels.pooled === 1);
    const perCall = await kernels.acquireEphemeral(ref('p'), 5_000);
    expect(perCall.ephemeral).toBe(true);
    expect(perCall.handle).toBe(starts[0]);
    expect(starts[0].executed.at(-1)).toContain('chdir("acme/p")');
    expect(kernels.size).toBe(0);
  });

  it('pauses the shared queue at maxKernels session kernels (pool kernels not counted) and resumes below', async () => {
    make({ maxKernels: 2, poolSize: 2 });
    kernels.start();
    await until(() => kernels.pooled === 2);
    expect(setSharedPaused).not.toHaveBeenCalled();

    await kernels.acquire(ref('a'), { reset: false, startTimeoutMs: 5_000 });
    expect(setSharedPaused).not.toHaveBeenCalled();
    const second = kernels.acquire(ref('b'), { reset: false, startTimeoutMs: 5_000 });
    // Paused as soon as the second session is being admitted, not only once its kernel is up.
    expect(setSharedPaused.mock.calls).toEqual([[true]]);
    await second;
    // Its own sessions still get their kernel (reuse, reset) without changing the count.
    await kernels.acquire(ref('a'), { reset: true, startTimeoutMs: 5_000 });
    expect(setSharedPaused.mock.calls).toEqual([[true]]);

    sessions.unhome(ref('a'));
    expect(await kernels.reconcile()).toBe(1);
    expect(setSharedPaused.mock.calls).toEqual([[true], [false]]);
    expect(kernels.size).toBe(1);
  });

  it("reuses the held kernel without asking Redis when the claim saw it held here; asks otherwise, and drops a kernel no longer held", async () => {
    make();
    const a = ref('a');
    const first = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    kernels.done(a);
    const asked = jest.spyOn(sessions, 'isHeldBy');

    const again = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000, holder: { home: 'w1', generation: 1 } });
    expect(again.handle).toBe(first.handle);
    expect(asked).not.toHaveBeenCalled();
    kernels.done(a);

    // The claim saw the session homed elsewhere: Redis is asked, and the disposed session's kernel goes.
    sessions.unhome(a);
    const next = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000, holder: { home: 'w2', generation: 1 } });
    expect(asked).toHaveBeenCalledTimes(1);
    expect(next.handle).not.toBe(first.handle);
    expect((first.handle as FakeKernel).shutDown).toBe(true);
    expect(next.info).toMatchObject({ generation: 2, stateLost: false });
  });

  it('culls a kernel idle for idleMs, releasing its session as culled; the next execution says state was lost', async () => {
    make({ idleMs: 1_000 });
    const a = ref('a');
    const first = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    kernels.done(a);
    expect(await kernels.cullIdle(Date.now() + 500)).toBe(0);
    expect(await kernels.cullIdle(Date.now() + 1_000)).toBe(1);
    expect((first.handle as FakeKernel).shutDown).toBe(true);
    expect(kernels.size).toBe(0);
    expect(await sessions.get(a)).toMatchObject({ workerId: null, kernel: { generation: 1, state: 'culled' } });

    const next = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    expect(next.info).toMatchObject({ generation: 2, stateLost: true, restarted: true });
  });

  it('never culls a kernel an execution holds; its idle time starts when the execution is done', async () => {
    make({ idleMs: 1_000 });
    const a = ref('a');
    const held = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    expect(await kernels.cullIdle(Date.now() + 60_000)).toBe(0);
    expect((held.handle as FakeKernel).shutDown).toBe(false);

    kernels.done(a);
    const doneAt = Date.now();
    expect(await kernels.cullIdle(doneAt + 900)).toBe(0);
    const again = await kernels.acquire(a, { reset: false, startTimeoutMs: 5_000 });
    expect(again.handle).toBe(held.handle);
    expect(again.info).toMatchObject({ generation: 1, stateLost: false, restarted: false });
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
