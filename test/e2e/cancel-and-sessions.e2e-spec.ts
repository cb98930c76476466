import type { Execution, SubmitAccepted } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';
import { readSse } from '../support/sse-client';
import { expectProblem } from '../support/problem-assertions';

jest.setTimeout(60_000);

/**
 * Cancel (`POST /v1/executions/{id}/cancel`) and the session calls (`GET`, `DELETE`,
 * `cancel-pending`) as a client sees them (DESIGN.md §4; seed behaviours 16, 21 and 22: a
 * disposal cancels what waits and does not wait for what runs — disposal.e2e-spec.ts has more).
 */

const SLEEP = (seconds: number, flag: string) => `import time\ntime.sleep(${seconds})\n${flag} = True`;

function expectCancelledInQueue(execution: Execution): void {
  expect(execution.status).toBe('cancelled');
  expect(execution.phase).toBe('queue');
  expect(execution.result).toMatchObject({ output: '', exitCode: null, cancelled: true });
  expect(execution.timings.startedAt).toBeUndefined();
}

/** Runs code in the session and answers its printed output. */
async function probe(stack: Stack, session: string, code: string): Promise<{ output: string; execution: Execution }> {
  const execution = await stack.run(session, { code });
  expect(execution.status).toBe('completed');
  return { output: execution.result!.output, execution };
}

describe('cancel and session management', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('cancels a queued execution: answered cancelled at once, it never runs, the running one completes', async () => {
    await probe(stack, 'cq', 'pass');
    const running = await stack.submit('cq', { code: SLEEP(1.5, 'ran_first') });
    const queued = await stack.submit('cq', { code: "ran_queued = True\nprint('queued ran')" });
    await stack.waitForStatus(running.executionId, 'running');

    const res = await stack.request('POST', `/v1/executions/${queued.executionId}/cancel`);
    expect(res.status).toBe(202);
    expectCancelledInQueue(res.json as Execution);
    expectCancelledInQueue(await stack.get(queued.executionId));
    // Cancelling again: it is over.
    expectProblem(await stack.request('POST', `/v1/executions/${queued.executionId}/cancel`), 409);

    const first = await stack.settled(running.executionId);
    expect(first.status).toBe('completed');
    const after = await probe(stack, 'cq', "print(globals().get('ran_queued', False), globals().get('ran_first', False))");
    expect(after.output).toBe('False True\n');

    // Its event stream never had a `started`: queued, then result.
    const events = await readSse(`${stack.url}/v1/executions/${queued.executionId}/events`, {
      authorization: `Bearer ${stack.apiKey}`,
    });
    expect(events.events.map((e) => e.event)).toEqual(['queued', 'result']);
  });

  it('cancels a running execution: interrupted promptly, partial output kept, status cancelled, kernel kept', async () => {
    await probe(stack, 'cr', 'x = 41');
    const code = "import time\nfor i in range(200):\n    print('tick', i, flush=True)\n    time.sleep(0.05)\nfinished_loop = True";
    const running = await stack.submit('cr', { code });
    // Wait until it has visibly produced output.
    await readSse(
      `${stack.url}/v1/executions/${running.executionId}/events`,
      { authorization: `Bearer ${stack.apiKey}` },
      (events) => events.filter((e) => e.event === 'stdout').length >= 2,
    );

    const cancelledAt = Date.now();
    const res = await stack.request('POST', `/v1/executions/${running.executionId}/cancel`);
    expect(res.status).toBe(202);
    expect((res.json as Execution).executionId).toBe(running.executionId);

    const ended = await stack.settled(running.executionId, 10_000);
    expect(Date.now() - cancelledAt).toBeLessThan(3_000);
    expect(ended.status).toBe('cancelled');
    expect(ended.phase).toBe('run');
    expect(ended.result?.cancelled).toBe(true);
    expect(ended.result?.exitCode).toBeNull();
    expect(ended.result?.output.startsWith('tick 0\ntick 1\n')).toBe(true);
    expect(ended.result?.output).not.toContain('tick 199');

    // The kernel was interrupted, not replaced: state survives and the loop never finished.
    const after = await probe(stack, 'cr', "print(x + 1, globals().get('finished_loop', False))");
    expect(after.output).toBe('42 False\n');
    expect(after.execution.kernel).toMatchObject({ generation: ended.kernel?.generation, stateLost: false, restarted: false });
  });

  it('answers 409 problem+json when cancelling a finished execution, and changes nothing', async () => {
    const done = await stack.run('cf', { code: "print('done')" });
    expect(done.status).toBe('completed');
    expectProblem(await stack.request('POST', `/v1/executions/${done.executionId}/cancel`), 409);
    expect(await stack.get(done.executionId)).toEqual(done);
  });

  it('GET /v1/sessions/{id} shows the pending count and home worker; cancel-pending cancels every queued one', async () => {
    await probe(stack, 'cp', 'pass');
    const running = await stack.submit('cp', { code: SLEEP(1.5, 'ran_head') });
    const queued: SubmitAccepted[] = [];
    for (let i = 0; i < 4; i++) queued.push(await stack.submit('cp', { code: `ran_${i} = True` }));
    await stack.waitForStatus(running.executionId, 'running');

    const session = await stack.request('GET', '/v1/sessions/cp');
    expect(session.status).toBe(200);
    // pending = everything accepted and not yet ended (the lane): the running head + 4 queued.
    expect(session.json).toMatchObject({ sessionId: 'cp', workerId: stack.workers[0].name, pending: 5 });
    expect(session.json.kernel.generation).toBeGreaterThanOrEqual(1);
    expect(session.json.lastActivityAt).toEqual(expect.any(Number));

    const res = await stack.request('POST', '/v1/sessions/cp/cancel-pending');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ sessionId: 'cp', cancelled: 4 });
    for (const q of queued) expectCancelledInQueue(await stack.get(q.executionId));
    expect((await stack.request('GET', '/v1/sessions/cp')).json.pending).toBe(1);

    expect((await stack.settled(running.executionId)).status).toBe('completed');
    expect((await stack.request('GET', '/v1/sessions/cp')).json.pending).toBe(0);
    const after = await probe(stack, 'cp', "print([n for n in ('ran_head', 'ran_0', 'ran_1', 'ran_2', 'ran_3') if n in globals()])");
    expect(after.output).toBe("['ran_head']\n");
  });

  it('DELETE /v1/sessions/{id} cancels the pending executions and ends the running one; the next one gets a fresh kernel', async () => {
    const warm = await probe(stack, 'cd', 'kept = 1');
    const running = await stack.submit('cd', { code: SLEEP(30, 'ran_head') });
    const queued: SubmitAccepted[] = [];
    for (let i = 0; i < 3; i++) queued.push(await stack.submit('cd', { code: `ran_${i} = True` }));
    await stack.waitForStatus(running.executionId, 'running');

    const res = await stack.request('DELETE', '/v1/sessions/cd');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ sessionId: 'cd', cancelled: 3 });
    for (const q of queued) expectCancelledInQueue(await stack.get(q.executionId));
    // The session has no home from the DELETE on: nothing reuses the old kernel.
    expect((await stack.request('GET', '/v1/sessions/cd')).json).toMatchObject({ workerId: null, kernel: { state: 'none' } });
    // The running one does not hold the disposal up: it ends cancelled as its kernel is shut down.
    const ended = await stack.settled(running.executionId, 10_000);
    expect(ended).toMatchObject({ status: 'cancelled', phase: 'run', result: { exitCode: null, cancelled: true } });
    expect(ended.result?.output).toMatch(/^\[the session was disposed while this execution ran; its kernel was shut down\]\n/);

    const after = await probe(stack, 'cd', "print('kept' in globals(), 'ran_head' in globals())");
    expect(after.output).toBe('False False\n');
    expect(after.execution.kernel).toMatchObject({ restarted: true, stateLost: false });
    expect(after.execution.kernel!.generation).toBeGreaterThan(warm.execution.kernel!.generation);
  });

  it('an execution submitted right after DELETE (while the last one still runs) runs on the fresh kernel', async () => {
    await probe(stack, 'cd2', 'kept = 1');
    const running = await stack.submit('cd2', { code: SLEEP(30, 'ran_head') });
    await stack.waitForStatus(running.executionId, 'running');
    expect((await stack.request('DELETE', '/v1/sessions/cd2')).status).toBe(200);
    const next = await stack.run('cd2', { code: "print('kept' in globals())" });
    expect((await stack.get(running.executionId)).status).toBe('cancelled');
    expect(next.status).toBe('completed');
    expect(next.result?.output).toBe('False\n');
    // The fresh kernel is the session's home now: the session says so once things settle.
    await new Promise((r) => setTimeout(r, 2_000));
    const session = await stack.request('GET', '/v1/sessions/cd2');
    expect(session.json).toMatchObject({ workerId: stack.workers[0].name, pending: 0, kernel: { generation: next.kernel?.generation } });
    expect(session.json.kernel.state).not.toBe('none');
  });

  it('answers 404 problem+json for the calls on an unknown session', async () => {
    expectProblem(await stack.request('GET', '/v1/sessions/never-used'), 404);
    expectProblem(await stack.request('POST', '/v1/sessions/never-used/cancel-pending'), 404);
    expectProblem(await stack.request('POST', '/v1/executions/ex_000000000000000000000000/cancel'), 404);
  });
});
