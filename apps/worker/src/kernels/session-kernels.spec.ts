import { Logger } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import type { KernelHandle, StartKernelOptions } from '@kernelfleet/kernel';
import { FakeKernel, until } from './fake-kernel.spec-helper';
import type { SessionKernels } from './session-kernels';
import { makeSessionKernels, ref, type FakeSessions } from './session-kernels.spec-helper';

beforeAll(() => Logger.overrideLogger(false));

/** Pool, starts, capacity, reuse and idle culling of the worker's session kernels. */
describe('SessionKernels: kernels for sessions', () => {
  let sessions: FakeSessions;
  let setSharedPaused: jest.Mock;
  let starts: FakeKernel[];
  let kernels: SessionKernels;

  function make(
    overrides: Partial<WorkerConfig['kernels']> = {},
    startKernel?: (opts: StartKernelOptions) => Promise<KernelHandle>,
    jupyterUrl?: string,
  ) {
    ({ kernels, sessions, setSharedPaused, starts } = makeSessionKernels(overrides, startKernel, jupyterUrl));
    return kernels;
  }
  /** Pool kernels start in staging folders of their own (SessionFolders.newStaging). */
  const pooled = () => starts.filter((k) => k.cwd?.startsWith('pool:w1/'));
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
    // Two warm-up cells while it waited in the pool, then the move into the session folder. This
    // root does not exist, so the staging folder cannot become the session's by a rename (as it
    // does in test/integration/kernel-placement.int-spec.ts): a setup cell moves the kernel from
    // its staging folder (a kernel that cannot move exits: the same integration test).
    expect(poolKernel.executed).toHaveLength(3);
    expect(poolKernel.executed.slice(0, 2)).toEqual(['None', 'None']);
    expect(poolKernel.executed[2]).toContain(`__import__('os').chdir("../../acme/s%2E1")`);
    expect(poolKernel.executed[2]).toContain(`__import__('os')._exit(1)`);
    expect(starts.filter((k) => !k.cwd?.startsWith('pool:'))).toHaveLength(0);
    await until(() => kernels.pooled === 1 && pooled().length === 2);
  });

  it('starts a kernel in the session folder when the pool is empty', async () => {
    make({ poolSize: 0 });
    kernels.start();
    const cold = await kernels.acquire(ref('s1'), { reset: false, startTimeoutMs: 5_000 });
    expect((cold.handle as FakeKernel).cwd).toBe('acme/s1');
    expect((cold.handle as FakeKernel).executed).toEqual([]);
  });

  it('takes per-call kernels from the pool too, without registering them', async () => {
    make();
    kernels.start();
    await until(() => kernels.pooled === 1);
    const perCall = await kernels.acquireEphemeral(ref('p'), 5_000);
    expect(perCall.ephemeral).toBe(true);
    expect(perCall.handle).toBe(starts[0]);
    expect(starts[0].executed.at(-1)).toContain('chdir("../../acme/p")');
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
});
