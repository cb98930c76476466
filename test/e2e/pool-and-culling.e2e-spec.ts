import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { Execution } from '@kernelfleet/contracts';
import { ExternalJupyter, kernelIdIn, PRINT_KERNEL_ID } from '../support/external-jupyter';
import { Stack, TEST_TENANT } from '../support/stack';

/**
 * The warm kernel pool, idle culling and per-worker capacity (DESIGN §6), observed on Jupyter
 * servers the tests own: every kernel a worker starts or shuts down shows in their listings, and
 * executions print the id and working directory of the kernel they ran on. Tests in a describe
 * run one after another, each starting from what the previous one left.
 */

jest.setTimeout(60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PRINT_CWD = "import os as _os_cwd\nprint('cwd', _os_cwd.getcwd())";
const withId = (code: string) => `${PRINT_KERNEL_ID}\n${code}`;
const cwdIn = (output: string | undefined) => /^cwd (.+)$/m.exec(output ?? '')?.[1];

describe('warm kernel pool (KERNEL_POOL_SIZE=2)', () => {
  let jupyter: ExternalJupyter;
  let stack: Stack;
  const sessionDir = (sessionId: string) => realpathSync(join(jupyter.rootDir, TEST_TENANT, sessionId));

  /**
   * Waits until `count` kernels have the worker's websocket open and are idle: a pool kernel is
   * ready once the worker has connected to it (the server lists it a little earlier).
   */
  const connectedKernels = async (count: number) => {
    const until = Date.now() + 10_000;
    for (;;) {
      const res = await fetch(`${jupyter.server.url}/api/kernels`, { headers: { authorization: `token ${jupyter.server.token}` } });
      const kernels = (await res.json()) as { connections: number; execution_state: string }[];
      const connected = kernels.filter((k) => k.connections > 0 && k.execution_state === 'idle').length;
      if (connected >= count || Date.now() > until) return;
      await sleep(50);
    }
  };

  beforeAll(async () => {
    jupyter = await ExternalJupyter.start();
    stack = await Stack.start({ workerEnv: { ...jupyter.workerEnv, KERNEL_POOL_SIZE: '2' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await jupyter?.stop();
  });

  it('starts kernels before any execution; a new session runs on one of them, in its own folder, and the pool refills', async () => {
    const pooled = await jupyter.kernelsUntil((ids) => ids.length === 2);
    expect(pooled).toHaveLength(2);

    const first = await stack.run('pool-a', { code: withId(`${PRINT_CWD}\nx = 41`) });
    expect(first.status).toBe('completed');
    const kernelId = kernelIdIn(first.result?.output);
    expect(pooled).toContain(kernelId);
    expect(cwdIn(first.result?.output)).toBe(sessionDir('pool-a'));
    expect(first.kernel).toMatchObject({ generation: 1, restarted: true, stateLost: false });

    // The session's kernel, the other pre-started one, and one started to replace the taken one.
    const refilled = await jupyter.kernelsUntil((ids) => ids.length === 3);
    expect(refilled).toHaveLength(3);
    expect(refilled).toEqual(expect.arrayContaining(pooled));

    const again = await stack.run('pool-a', { code: withId("open('note.txt', 'w').write('here')\nprint(x + 1)") });
    expect(again.result?.output).toContain('42\n');
    expect(kernelIdIn(again.result?.output)).toBe(kernelId);
    expect(again.kernel).toMatchObject({ generation: 1, restarted: false, stateLost: false });
    expect(readFileSync(join(sessionDir('pool-a'), 'note.txt'), 'utf8')).toBe('here');
  });

  it('runs a new session’s first execution about as fast as a warm one, not at kernel-start speed', async () => {
    await jupyter.kernelsUntil((ids) => ids.length === 3);
    await connectedKernels(3); // pool-a's and two ready ones
    const first = await stack.run('pool-fast', { code: '1 + 1' });
    const warm = await stack.run('pool-fast', { code: '1 + 1' });
    expect(first.kernel).toMatchObject({ generation: 1, restarted: true });
    const took = (e: Execution) => e.timings.finishedAt! - e.timings.startedAt!;
    // A kernel start costs ~0.6 s here; a pool kernel costs one setup round trip.
    expect(took(first)).toBeLessThan(400);
    expect(took(first)).toBeLessThan(took(warm) + 250);
  });

  it('gives a per-call execution a pool kernel in the session folder, shuts it down after, and refills', async () => {
    const before = await jupyter.kernelsUntil((ids) => ids.length === 4);
    expect(before).toHaveLength(4); // two sessions + two ready
    const run = await stack.run('pool-pc', { code: withId(PRINT_CWD), kernelMode: 'per-call' });
    expect(run.status).toBe('completed');
    const kernelId = kernelIdIn(run.result?.output);
    expect(before).toContain(kernelId);
    expect(cwdIn(run.result?.output)).toBe(sessionDir('pool-pc'));

    const after = await jupyter.kernelsUntil((ids) => !ids.includes(kernelId) && ids.length === 4);
    expect(after).not.toContain(kernelId);
    expect(after).toHaveLength(4);
  });

  it('runs two first executions of a new session submitted at once on one kernel, both generation 1', async () => {
    const before = await jupyter.kernelsUntil((ids) => ids.length === 4);
    const code = withId("n = globals().get('n', 0) + 1\nprint('n', n)");
    const submitted = await Promise.all([stack.submit('pool-twin', { code }), stack.submit('pool-twin', { code })]);
    const runs = (await Promise.all(submitted.map((s) => stack.settled(s.executionId)))).sort((a, b) => a.seq - b.seq);
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed']);
    expect(runs.map((r) => r.kernel?.generation)).toEqual([1, 1]);
    expect(runs.map((r) => r.kernel?.restarted)).toEqual([true, false]);
    expect(runs[0].result?.output).toContain('n 1\n');
    expect(runs[1].result?.output).toContain('n 2\n');
    expect(kernelIdIn(runs[1].result?.output)).toBe(kernelIdIn(runs[0].result?.output));
    // Exactly one more kernel on the server once the pool has refilled: the session's.
    const after = await jupyter.kernelsUntil((ids) => ids.length === before.length + 1);
    expect(after).toHaveLength(before.length + 1);
  });
});

describe('idle culling and capacity on one worker (KERNEL_IDLE_MS=1500, MAX_KERNELS=1)', () => {
  const IDLE_MS = 1_500;
  let jupyter: ExternalJupyter;
  let stack: Stack;

  beforeAll(async () => {
    jupyter = await ExternalJupyter.start();
    stack = await Stack.start({
      workerEnv: { ...jupyter.workerEnv, KERNEL_IDLE_MS: String(IDLE_MS), MAX_KERNELS: '1', KERNEL_POOL_SIZE: '1' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await jupyter?.stop();
  });

  const session = async (sessionId: string) => (await stack.request('GET', `/v1/sessions/${sessionId}`)).json;
  /** Frees the worker's one slot for the next test. */
  const remove = async (sessionId: string) => {
    expect((await stack.request('DELETE', `/v1/sessions/${sessionId}`)).status).toBe(200);
  };

  it('shuts an idle kernel down; the next execution reports the lost state on generation 2', async () => {
    const first = await stack.run('cull-a', { code: withId('x = 1') });
    expect(first.kernel).toMatchObject({ generation: 1, stateLost: false });
    const oldKernel = kernelIdIn(first.result?.output);

    const ids = await jupyter.kernelsUntil((list) => !list.includes(oldKernel), 6_000);
    expect(ids).not.toContain(oldKernel);
    expect(await session('cull-a')).toMatchObject({ workerId: null, kernel: { generation: 1, state: 'culled' } });

    const next = await stack.run('cull-a', { code: withId("print('x' in globals())") });
    expect(next.status).toBe('completed');
    expect(next.result?.output).toContain('False\n');
    expect(next.kernel).toMatchObject({ generation: 2, stateLost: true, restarted: true });
    expect(kernelIdIn(next.result?.output)).not.toBe(oldKernel);
    await remove('cull-a');
  });

  it('does not cull a kernel whose execution runs longer than the idle time', async () => {
    const warm = await stack.run('cull-busy', { code: withId('y = 1') });
    const kernelId = kernelIdIn(warm.result?.output);

    const long = await stack.run('cull-busy', { code: withId("import time\ntime.sleep(3.5)\nprint('slept', y)") });
    expect(long.status).toBe('completed');
    expect(long.result?.output).toContain('slept 1\n');
    expect(kernelIdIn(long.result?.output)).toBe(kernelId);

    const after = await stack.run('cull-busy', { code: withId('print(y)') });
    expect(after.result?.output).toContain('1\n');
    expect(kernelIdIn(after.result?.output)).toBe(kernelId);
    expect(after.kernel).toMatchObject({ generation: 1, stateLost: false, restarted: false });
    await remove('cull-busy');
  });

  it('keeps a new session queued while the one slot is held, and runs it once that kernel is culled', async () => {
    const held = await stack.run('cap-a', { code: 'a = 1' });
    expect(held.status).toBe('completed');
    const waiting = await stack.submit('cap-b', { code: "print('b ran')" });

    await sleep(700);
    expect((await stack.get(waiting.executionId)).status).toBe('queued');

    const ran = await stack.settled(waiting.executionId, 15_000);
    expect(ran.status).toBe('completed');
    expect(ran.result?.output).toBe('b ran\n');
    // It started only after cap-a's kernel had been idle for the idle time and was culled.
    expect(ran.timings.startedAt! - held.timings.finishedAt!).toBeGreaterThanOrEqual(IDLE_MS);
    expect((await session('cap-a')).kernel.state).toBe('culled');
    await remove('cap-b');
  });
});

describe('capacity across two workers (MAX_KERNELS=1 each)', () => {
  let jupyter: ExternalJupyter;
  let stack: Stack;

  beforeAll(async () => {
    jupyter = await ExternalJupyter.start();
    // One pool kernel each: pool kernels do not count toward MAX_KERNELS (else neither worker
    // would take any session).
    stack = await Stack.start({ workers: 2, workerEnv: { ...jupyter.workerEnv, MAX_KERNELS: '1', KERNEL_POOL_SIZE: '1' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await jupyter?.stop();
  });

  it('sends new sessions to a worker with room, keeps a full worker’s own sessions there, and queues the rest until a slot frees', async () => {
    const a = await stack.run('cap2-a', { code: 'a = 1' });
    expect(a.status).toBe('completed');
    const homeA = a.kernel!.workerId;

    const b = await stack.run('cap2-b', { code: 'b = 2' });
    expect(b.status).toBe('completed');
    expect(b.kernel!.workerId).not.toBe(homeA);

    // A full worker still runs the sessions it holds.
    const a2 = await stack.run('cap2-a', { code: 'print(a)' });
    expect(a2.result?.output).toBe('1\n');
    expect(a2.kernel).toMatchObject({ workerId: homeA, generation: 1, stateLost: false, restarted: false });

    const c = await stack.submit('cap2-c', { code: "print('c ran')" });
    await sleep(1_000);
    expect((await stack.get(c.executionId)).status).toBe('queued');

    expect((await stack.request('DELETE', '/v1/sessions/cap2-a')).status).toBe(200);
    const ran = await stack.settled(c.executionId, 15_000);
    expect(ran.status).toBe('completed');
    expect(ran.result?.output).toBe('c ran\n');
    expect(ran.kernel?.workerId).toBe(homeA);
  });
});
