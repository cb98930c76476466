import type { Execution } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';

/**
 * Re-homing after a SIGKILL (docs/capacity.md, "Re-homing"): the sessions of a lost worker come
 * back on another one, the longest-waiting lane heads first, with no head left behind.
 */

jest.setTimeout(300_000);

const SESSIONS = 50;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

describe('re-homing a lost worker with 50 sessions', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ workers: 0 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('brings every queued lane head back on the other worker, in the order they were accepted', async () => {
    // Generous budgets: fifty kernels start on two cores, twice.
    const env = { WORKER_LEASE_MS: '3000', MAX_KERNELS: '64', KERNEL_START_MAX_MS: '60000' };
    const lost = await stack.startWorker(env);
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `rehome-${i}`);
    for (let i = 0; i < SESSIONS; i += 5) {
      await Promise.all(sessions.slice(i, i + 5).map(async (s) => expect((await stack.run(s, { code: 'x = 1', timeoutMs: 120_000 })).kernel?.workerId).toBe(lost.name)));
    }
    const other = await stack.startWorker(env);

    // One execution per session, accepted in order: four run (the worker's concurrency), the rest wait in its queue.
    const heads = [];
    for (const s of sessions) heads.push(await stack.submit(s, { code: "import time; time.sleep(1); print('x' in globals())", timeoutMs: 240_000 }));
    for (const h of heads.slice(0, 4)) await stack.waitForStatus(h.executionId, 'running');
    const killedAt = Date.now();
    await lost.stop('SIGKILL');

    const ended: Execution[] = await Promise.all(heads.map((h) => stack.settled(h.executionId, 240_000)));
    const rehomed = ended.filter((e) => e.status !== 'outcome_unknown');
    // Those running at the kill have unknown outcomes; every other one ran on the other worker, on a fresh kernel that says why.
    expect(ended.filter((e) => e.status === 'outcome_unknown').length).toBeLessThanOrEqual(4);
    expect(rehomed.length).toBeGreaterThanOrEqual(SESSIONS - 4);
    for (const e of rehomed) {
      expect(e.status).toBe('completed');
      expect(e.result?.output).toBe('False\n');
      expect(e.kernel).toMatchObject({ workerId: other.name, generation: 2, stateLost: true, stateLostReason: 'lost' });
    }

    // The longest waiting first: sorted by acceptance, the starts are in order but for the
    // overlap of the worker's parallel kernel starts (WORKER_CONCURRENCY, 4).
    const starts = rehomed.map((e) => e.timings.startedAt!);
    const overtaken = starts.filter((started, i) => starts.slice(i + 4 + 1).some((later) => later < started)).length;
    expect(overtaken).toBe(0);
    const waits = starts.map((s) => s - killedAt).sort((a, b) => a - b);
    console.log(
      `re-homing ${rehomed.length} lane heads after a SIGKILL: wait from the kill to start p50 ${percentile(waits, 0.5)} ms, ` +
        `p99 ${percentile(waits, 0.99)} ms, max ${waits.at(-1)} ms`,
    );
    // Bounded by its place in line: nobody waited behind more than the heads accepted before it.
    expect(waits.at(-1)!).toBeLessThan(240_000);
  });
});
