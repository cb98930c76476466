import { Stack } from '../support/stack';

/**
 * Deadlines, cancels and disposal as a client sees them (seed-behaviour.md §4: 5, 9, 16, 22):
 * a timed-out cell is interrupted and the kernel lives on; a deadline that passes in the queue
 * ends the execution there; queued executions that are cancelled or disposed never run.
 */

jest.setTimeout(60_000);

const interruptedNotice = (seconds: number) =>
  `[eval cell timed out after ${seconds}s; kernel interrupted but remains running. ` +
  'Reset the kernel via { reset: true } if state appears corrupted.]';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deadlines, cancels and disposal', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('times out 4.1 s / 5 s / 2 s cells: notice first, partial output kept, kernel and globals survive (5)', async () => {
    const cases = [
      { timeoutMs: 4_100, seconds: 4 },
      { timeoutMs: 5_000, seconds: 5 },
      { timeoutMs: 2_000, seconds: 2 },
    ];
    await Promise.all(
      cases.map(async ({ timeoutMs, seconds }) => {
        const session = `dl-timeout-${timeoutMs}`;
        // A warm kernel, so the whole budget goes to the cell (kernel starts compete for 2 cores).
        expect((await stack.run(session, { code: "kept = 'still here'" })).status).toBe('completed');

        const execution = await stack.run(session, {
          code: "print('started', flush=True)\nimport time\ntime.sleep(60)\nprint('never')",
          timeoutMs,
        });
        expect(execution.status).toBe('timed_out');
        expect(execution.phase).toBe('run');
        expect(execution.result?.cancelled).toBe(true);
        expect(execution.result?.exitCode).toBeNull();
        const lines = (execution.result?.output ?? '').split('\n');
        expect(lines[0]).toBe(interruptedNotice(seconds));
        expect(lines.slice(1)).toContain('started');
        expect(execution.result?.output).not.toContain('never');
        expect(execution.kernel).toMatchObject({ generation: 1, stateLost: false, restarted: false });
        const { acceptedAt, finishedAt } = execution.timings;
        expect(finishedAt! - acceptedAt).toBeGreaterThanOrEqual(timeoutMs);
        expect(finishedAt! - acceptedAt).toBeLessThan(timeoutMs + 3_000);

        const next = await stack.run(session, { code: 'print(kept)' });
        expect(next.status).toBe('completed');
        expect(next.result?.output).toBe('still here\n');
        expect(next.kernel).toMatchObject({ generation: 1, stateLost: false, restarted: false });
      }),
    );
  });

  it('ends an execution whose deadline passes while it waits at its deadline, in phase queue, unrun (9)', async () => {
    const session = 'dl-queue';
    await stack.run(session, { code: 'warm = 1' });
    const first = await stack.submit(session, { code: "import time\ntime.sleep(4)\nprint('first done')" });
    await stack.waitForStatus(first.executionId, 'running');

    const late = await stack.submit(session, { code: 'flag9 = True', timeoutMs: 500 });
    const expired = await stack.settled(late.executionId, 10_000);
    // Answered at its deadline (the sweeper runs every second), not when its turn came.
    expect((await stack.get(first.executionId)).status).toBe('running');

    expect(expired.status).toBe('timed_out');
    expect(expired.phase).toBe('queue');
    expect(expired.result?.output).toBe('Command timed out');
    expect(expired.result?.cancelled).toBe(true);
    expect(expired.result?.exitCode).toBeNull();
    expect(expired.timings.startedAt).toBeUndefined();

    const firstDone = await stack.settled(first.executionId);
    expect(firstDone.status).toBe('completed');
    expect(firstDone.result?.output).toBe('first done\n');

    const check = await stack.run(session, { code: "print('flag9' in globals(), warm)" });
    expect(check.result?.output).toBe('False 1\n');
  });

  it('cancels a queued execution: empty output, never runs; the running one and those behind are unaffected (16)', async () => {
    const session = 'dl-cancel-queued';
    await stack.run(session, { code: 'warm = 1' });
    const running = await stack.submit(session, { code: "import time\ntime.sleep(1.5)\nprint('running done')" });
    await stack.waitForStatus(running.executionId, 'running');
    const queued = await stack.submit(session, { code: 'flag16 = True' });
    const behind = await stack.submit(session, { code: "print('behind', 'flag16' in globals())" });

    const cancel = await stack.request('POST', `/v1/executions/${queued.executionId}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.json.status).toBe('cancelled');

    const cancelled = await stack.settled(queued.executionId);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.result?.output).toBe('');
    expect(cancelled.result?.cancelled).toBe(true);
    expect(cancelled.result?.exitCode).toBeNull();
    expect(cancelled.timings.startedAt).toBeUndefined();

    const runningDone = await stack.settled(running.executionId);
    expect(runningDone.status).toBe('completed');
    expect(runningDone.result?.output).toBe('running done\n');

    const behindDone = await stack.settled(behind.executionId);
    expect(behindDone.status).toBe('completed');
    expect(behindDone.result?.output).toBe('behind False\n');
    expect(behindDone.kernel).toMatchObject({ generation: 1, restarted: false });
  });

  // Seed 22 had the running execution complete; kernelfleet ends it at once instead, so that a
  // hung one cannot hold a disposal up (seed 21; docs/architecture.md, Disposal).
  it('DELETE session: the queued execution is cancelled, the running one ends cancelled at once, the next gets a fresh kernel (21, 22)', async () => {
    const session = 'dl-dispose';
    const warm = await stack.run(session, { code: 'g22 = 1' });
    expect(warm.kernel?.generation).toBe(1);
    const running = await stack.submit(session, {
      code: "print('a-start', flush=True)\nimport time\ntime.sleep(60)\nprint('a-end', g22)",
    });
    await stack.waitForStatus(running.executionId, 'running');
    await sleep(200);
    const queued = await stack.submit(session, { code: 'flag22 = True' });

    const disposed = await stack.request('DELETE', `/v1/sessions/${session}`);
    expect(disposed.status).toBe(200);
    expect(disposed.json).toMatchObject({ sessionId: session, cancelled: 1 });

    const cancelled = await stack.settled(queued.executionId);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.result?.output).toBe('');
    expect(cancelled.timings.startedAt).toBeUndefined();

    const runningDone = await stack.settled(running.executionId, 20_000);
    expect(runningDone.status).toBe('cancelled');
    expect(runningDone.result?.output).toBe('[the session was disposed while this execution ran; its kernel was shut down]\na-start\n');
    expect(runningDone.result?.exitCode).toBeNull();
    expect(runningDone.timings.finishedAt! - runningDone.timings.startedAt!).toBeLessThan(30_000);

    const next = await stack.run(session, { code: "print('g22' in globals(), 'flag22' in globals())" });
    expect(next.status).toBe('completed');
    expect(next.result?.output).toBe('False False\n');
    expect(next.kernel).toMatchObject({ generation: 2, stateLost: false, restarted: true });
  });
});
