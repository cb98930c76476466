import { readFileSync } from 'node:fs';
import type { Execution, OwnerDisposal, SessionsDisposal, SubmitAccepted } from '@kernelfleet/contracts';
import type { FleetStore } from '@kernelfleet/store';
import { parseMetrics, valueOf } from '../support/metrics-text';
import { expectProblem } from '../support/problem-assertions';
import { readSse } from '../support/sse-client';
import { Stack, TEST_TENANT } from '../support/stack';
import { connectStore } from '../support/store-fixtures';

jest.setTimeout(90_000);

/**
 * Disposal (seed §2.4, behaviours 20–22): `DELETE /v1/sessions/{id}`, dispose by owner and
 * `DELETE /v1/sessions` un-home the session in Redis, and the worker shuts the kernel down at
 * once — a hung cell does not hold it up (its execution ends `cancelled`), and a worker that never
 * hears the control message finds out from its reconcile with Redis (KERNEL_RECONCILE_MS, 2 s).
 */

const NOTICE = '[the session was disposed while this execution ran; its kernel was shut down]\n';
/** Prints, then hangs far longer than any test (its deadline: 2 min): asleep, or busy holding the GIL. */
const HUNG = "print('before the hang', flush=True)\nimport time\ntime.sleep(600)";
const BUSY = "print('before the hang', flush=True)\nwhile True: pass";
const HUNG_TIMEOUT_MS = 120_000;

/** Whether a process has exited (gone from /proc, or a zombie waiting to be reaped). */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return true;
  }
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('disposal', () => {
  let stack: Stack;
  let store: FleetStore;
  beforeAll(async () => {
    stack = await Stack.start({ workers: 2 });
    store = connectStore(stack.prefix, 'disposal-e2e');
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    await stack?.stop();
  });

  /** Runs code to completion in the session; answers the execution. */
  async function run(session: string, body: Record<string, unknown>, key?: string): Promise<Execution> {
    const execution = await stack.run(session, body, { key });
    expect({ session, status: execution.status, output: execution.result?.output }).toMatchObject({ session, status: 'completed' });
    return execution;
  }

  /** Warms the session's kernel with a global `kept`; answers the execution and the kernel's pid. */
  async function warm(session: string, body: Record<string, unknown> = {}): Promise<{ execution: Execution; pid: number }> {
    const execution = await run(session, { code: "kept = 41\nimport os\nprint(os.getpid())", ...body });
    return { execution, pid: Number(execution.result!.output.trim()) };
  }

  /** Submits a hung cell and waits until it has printed (so it runs on the kernel). */
  async function hang(session: string, body: Record<string, unknown> = {}, code = HUNG): Promise<SubmitAccepted> {
    const hung = await stack.submit(session, { code, timeoutMs: HUNG_TIMEOUT_MS, ...body });
    await readSse(
      `${stack.url}/v1/executions/${hung.executionId}/events`,
      { authorization: `Bearer ${stack.apiKey}` },
      (events) => events.some((e) => e.event === 'stdout'),
      30_000,
    );
    return hung;
  }

  /** The hung execution ended `cancelled` by the disposal, soon after `since`, partial output kept. */
  async function expectDisposedRun(hung: SubmitAccepted, since: number, withinMs: number): Promise<Execution> {
    const ended = await stack.settled(hung.executionId, withinMs + 5_000);
    expect(Date.now() - since).toBeLessThan(withinMs);
    expect(ended).toMatchObject({ status: 'cancelled', phase: 'run', result: { exitCode: null, cancelled: true } });
    expect(ended.result?.output).toBe(`${NOTICE}before the hang\n`);
    return ended;
  }

  /** The session's next execution runs on a fresh kernel: `kept` gone, next generation, no state loss. */
  async function expectFreshKernel(session: string, before: Execution, key?: string): Promise<Execution> {
    const next = await run(session, { code: "print('kept' in globals())" }, key);
    expect(next.result?.output).toBe('False\n');
    expect(next.kernel).toMatchObject({ restarted: true, stateLost: false });
    expect(next.kernel!.generation).toBeGreaterThan(before.kernel!.generation);
    return next;
  }

  async function disposedCount(workerId: string, foundBy: 'message' | 'reconcile' | 'acquire'): Promise<number> {
    const worker = stack.workers.find((w) => w.name === workerId)!;
    const text = await (await fetch(worker.metricsUrl!)).text();
    return valueOf(parseMetrics(text), 'kernelfleet_kernels_disposed_total', { found_by: foundBy }) ?? 0;
  }

  it('DELETE /v1/sessions answers 200 {disposed: []} for a tenant with nothing to dispose, and 401 without a key', async () => {
    const res = await stack.request('DELETE', '/v1/sessions', undefined, { key: stack.otherKey });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ disposed: [] } satisfies SessionsDisposal);
    const anonymous = await fetch(`${stack.url}/v1/sessions`, { method: 'DELETE' });
    expect(anonymous.status).toBe(401);
    // The path exists now: another method is 405 with Allow, not 404.
    const get = await stack.request('GET', '/v1/sessions');
    expectProblem(get, 405);
    expect(get.headers.get('allow')).toBe('DELETE');
  });

  it('DELETE /v1/sessions/{id} does not wait for a hung cell: it ends cancelled at once and its kernel is gone', async () => {
    const { execution: before, pid } = await warm('hung-one');
    const hung = await hang('hung-one');

    const asked = Date.now();
    const res = await stack.request('DELETE', '/v1/sessions/hung-one');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ sessionId: 'hung-one', cancelled: 0 });
    expect(Date.now() - asked).toBeLessThan(2_000);
    // Un-homed in Redis by the DELETE itself.
    expect((await stack.request('GET', '/v1/sessions/hung-one')).json).toMatchObject({ workerId: null, kernel: { state: 'none' } });

    const ended = await expectDisposedRun(hung, asked, 5_000);
    expect(ended.kernel).toMatchObject({ workerId: before.kernel!.workerId, generation: before.kernel!.generation });
    await eventually(() => processGone(pid), `kernel process ${pid} exits`, 5_000);

    const next = await expectFreshKernel('hung-one', before);
    expect((await stack.request('GET', '/v1/sessions/hung-one')).json).toMatchObject({
      workerId: next.kernel!.workerId,
      kernel: { generation: next.kernel!.generation, state: 'idle' },
      pending: 0,
    });
  });

  it('dispose by owner does not wait for a busy cell either; what waited behind it is cancelled', async () => {
    const { execution: before, pid } = await warm('owned-hung', { ownerId: 'olive' });
    const hung = await hang('owned-hung', { ownerId: 'olive' }, BUSY);
    const queued = await stack.submit('owned-hung', { code: 'ran_queued = True', ownerId: 'olive' });

    const asked = Date.now();
    const res = await stack.request('DELETE', '/v1/owners/olive');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ownerId: 'olive', disposed: ['owned-hung'], detached: [] } satisfies OwnerDisposal);
    expect(Date.now() - asked).toBeLessThan(2_000);

    await expectDisposedRun(hung, asked, 5_000);
    expect(await stack.get(queued.executionId)).toMatchObject({ status: 'cancelled', phase: 'queue', result: { output: '' } });
    await eventually(() => processGone(pid), `kernel process ${pid} exits`, 5_000);
    await expectFreshKernel('owned-hung', before);
  });

  it("DELETE /v1/sessions disposes every session of the tenant with a kernel or pending work, hung ones included, and no other tenant's", async () => {
    const idle = await warm('all-idle');
    const hungWarm = await warm('all-hung');
    // Another tenant's session of the same id, with state of its own.
    const other = await run('all-idle', { code: 'theirs = 7' }, stack.otherKey);
    // A session with nothing to dispose: per-call only (no kernel of its own), nothing pending.
    await run('all-per-call', { code: 'print(1)', kernelMode: 'per-call' });
    const hung = await hang('all-hung');

    const asked = Date.now();
    const res = await stack.request('DELETE', '/v1/sessions');
    expect(res.status).toBe(200);
    // Sorted; `hung-one` and `owned-hung` (disposed above, then used again) have kernels too.
    expect(res.json).toEqual({ disposed: ['all-hung', 'all-idle', 'hung-one', 'owned-hung'] } satisfies SessionsDisposal);
    expect(Date.now() - asked).toBeLessThan(3_000);

    await expectDisposedRun(hung, asked, 5_000);
    await eventually(() => processGone(idle.pid) && processGone(hungWarm.pid), 'the disposed kernels exit', 5_000);
    await expectFreshKernel('all-idle', idle.execution);
    await expectFreshKernel('all-hung', hungWarm.execution);

    // The other tenant's session kept its kernel and state.
    const survived = await run('all-idle', { code: 'print(theirs)' }, stack.otherKey);
    expect(survived.result?.output).toBe('7\n');
    expect(survived.kernel).toMatchObject({ generation: other.kernel!.generation, restarted: false, stateLost: false });

    // And the other way round: their dispose-all disposes their session only.
    const mine = await run('all-idle', { code: 'mine = 1' });
    const theirDisposal = await stack.request('DELETE', '/v1/sessions', undefined, { key: stack.otherKey });
    expect(theirDisposal.json).toEqual({ disposed: ['all-idle'] } satisfies SessionsDisposal);
    const stillMine = await run('all-idle', { code: 'print(mine)' });
    expect(stillMine.kernel).toMatchObject({ generation: mine.kernel!.generation, restarted: false });
  });

  it('a worker that never gets the control message still shuts the kernel down and ends the hung cell (reconcile)', async () => {
    const { execution: before, pid } = await warm('lost-message');
    const { pid: idlePid } = await warm('lost-message-idle');
    const hung = await hang('lost-message');
    const home = before.kernel!.workerId;
    const [viaMessage, viaReconcile] = [await disposedCount(home, 'message'), await disposedCount(home, 'reconcile')];

    // The store's disposal with the publish left out: as if the pub/sub message were lost.
    const asked = Date.now();
    const disposal = await store.disposal.dispose({ tenant: TEST_TENANT, sessionId: 'lost-message' }, { notify: false });
    expect(disposal).toEqual({ cancelled: 0, home });
    const idleHome = (await store.disposal.dispose({ tenant: TEST_TENANT, sessionId: 'lost-message-idle' }, { notify: false })).home;
    expect(idleHome).not.toBeNull();

    // Within a reconcile period (2 s) plus the kernel's shutdown.
    await expectDisposedRun(hung, asked, 6_000);
    await eventually(() => processGone(pid) && processGone(idlePid), 'the kernels of sessions disposed without a message exit', 6_000);
    expect(await disposedCount(home, 'message')).toBe(viaMessage);
    expect(await disposedCount(home, 'reconcile')).toBeGreaterThan(viaReconcile);

    await expectFreshKernel('lost-message', before);
  });

  it('answers 400 naming sessionId for a bad id and 404 for an unknown session, changing nothing', async () => {
    expectProblem(await stack.request('DELETE', '/v1/sessions/no%20spaces'), 400, /sessionId/);
    expectProblem(await stack.request('DELETE', `/v1/sessions/${'x'.repeat(129)}`), 400, /sessionId/);
    expectProblem(await stack.request('DELETE', '/v1/sessions/never-used'), 404);
    expectProblem(await stack.request('GET', '/v1/sessions/never-used'), 404);
  });
});
