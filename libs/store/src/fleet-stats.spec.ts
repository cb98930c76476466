import type { Execution } from '@kernelfleet/contracts';
import { percentile, summariseTimings, terminalTiming, type TerminalTiming } from './fleet-stats';

const execution = (status: Execution['status'], timings: Partial<Execution['timings']>): Execution => ({
  executionId: 'ex_1',
  sessionId: 's',
  seq: 1,
  status,
  kernelMode: 'session',
  timings: { acceptedAt: 1_000, deadlineAt: 99_000, ...timings },
});

describe('terminal timings for the dashboard', () => {
  it('takes queue wait as accept → start and run time as start → end', () => {
    expect(terminalTiming(execution('completed', { startedAt: 1_250, finishedAt: 2_000 }), 5_000)).toEqual({
      status: 'completed',
      queueWaitMs: 250,
      runMs: 750,
      at: 2_000,
    });
  });

  it('has no queue wait or run time for an execution that never started', () => {
    expect(terminalTiming(execution('timed_out', { finishedAt: 31_000 }), 40_000)).toEqual({
      status: 'timed_out',
      queueWaitMs: null,
      runMs: null,
      at: 31_000,
    });
  });

  it('takes nearest-rank percentiles', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([3, 9], 50)).toBe(3);
    expect(percentile([], 50)).toBeNull();
  });

  it('summarises only the window, and percentiles only over executions that started', () => {
    const now = 1_000_000;
    const entries: TerminalTiming[] = [
      { status: 'completed', queueWaitMs: 10, runMs: 100, at: now - 1_000 },
      { status: 'failed', queueWaitMs: 30, runMs: 300, at: now - 2_000 },
      { status: 'cancelled', queueWaitMs: null, runMs: null, at: now - 3_000 },
      { status: 'completed', queueWaitMs: 20, runMs: 200, at: now - 4_000 },
      { status: 'completed', queueWaitMs: 9_999, runMs: 9_999, at: now - 400_000 },
    ];
    expect(summariseTimings(entries, 300_000, now, false)).toEqual({
      windowMs: 300_000,
      executions: 4,
      started: 3,
      queueWaitMs: { p50: 20, p99: 30 },
      runMs: { p50: 200, p99: 300 },
      truncated: false,
    });
  });

  it('says so when a full list does not reach back to the start of the window', () => {
    const now = 1_000_000;
    const entries: TerminalTiming[] = [{ status: 'completed', queueWaitMs: 1, runMs: 1, at: now }];
    expect(summariseTimings(entries, 60_000, now, true).truncated).toBe(true);
    expect(summariseTimings([...entries, { ...entries[0], at: now - 120_000 }], 60_000, now, true).truncated).toBe(false);
  });
});
