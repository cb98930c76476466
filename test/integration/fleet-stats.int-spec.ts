import type { Execution, TerminalStatus } from '@kernelfleet/contracts';
import { STATS_FLUSH_MS, type FleetStore } from '@kernelfleet/store';
import { connectStore, testPrefix } from '../support/store-fixtures';

/** A terminal execution that waited `waitMs` in the queue and ran `runMs` (never started: null). */
function ended(status: TerminalStatus, finishedAt: number, waitMs: number | null, runMs: number): Execution {
  const acceptedAt = finishedAt - runMs - (waitMs ?? 0);
  const startedAt = waitMs === null ? undefined : acceptedAt + waitMs;
  return { executionId: `ex_${finishedAt}`, sessionId: 's', seq: 1, status, timings: { acceptedAt, startedAt, finishedAt } } as Execution;
}

/**
 * The dashboard's figures of terminal executions (docs/operations.md) against a real Redis:
 * what ends within a second is sent together, and nothing recorded is lost at close.
 */
describe('dashboard figures in Redis', () => {
  const prefix = testPrefix('stats');
  let store: FleetStore;
  beforeAll(() => {
    store = connectStore(prefix, 'stats-test');
  });
  afterAll(async () => {
    await store.close();
  });

  it('sends what ended within a second together: every status counted, the timings newest first', async () => {
    const now = Date.now();
    store.stats.record(ended('completed', now - 40, 5, 100));
    store.stats.record(ended('failed', now - 30, 7, 200));
    store.stats.record(ended('cancelled', now - 20, null, 0));
    store.stats.record(ended('completed', now - 10, 9, 300));
    expect(await store.stats.recentTimings()).toEqual([]);

    await new Promise((resolve) => setTimeout(resolve, STATS_FLUSH_MS + 500));
    const timings = await store.stats.recentTimings();
    expect(timings.map((t) => [t.status, t.queueWaitMs, t.runMs])).toEqual([
      ['completed', 9, 300],
      ['cancelled', null, null],
      ['failed', 7, 200],
      ['completed', 5, 100],
    ]);
    expect((await store.stats.rates(now)).perMinute).toEqual({ completed: 2, failed: 1, cancelled: 1, timed_out: 0, outcome_unknown: 0 });
    const summary = await store.stats.timings(60_000, now);
    expect(summary).toMatchObject({ executions: 4, started: 3, runMs: { p50: 200, p99: 300 } });
  });

  it('sends what it still holds when the store closes', async () => {
    const other = connectStore(prefix, 'stats-test-closing');
    const before = (await store.stats.rates()).perMinute.timed_out;
    other.stats.record(ended('timed_out', Date.now(), 3, 30_000));
    await other.close();
    expect((await store.stats.rates()).perMinute.timed_out).toBe(before + 1);
  });
});
