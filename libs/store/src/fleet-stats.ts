import type { RedisClient } from './redis-connection';
import { TERMINAL_STATUSES, type Execution, type TerminalStatus } from '@kernelfleet/contracts';
import type { KeySpace } from './keys';

/** Terminal executions kept for the timing percentiles (newest first). */
export const TIMINGS_KEPT = 1_000;
/** Width of a terminal-count bucket; a rate "per minute" adds the last six. */
export const RATE_BUCKET_MS = 10_000;
const RATE_BUCKETS = 6;
/** Buckets outlive any window read from them. */
const RATE_BUCKET_TTL_SECONDS = 3_600;

/** One terminal execution as the timing list keeps it. */
export interface TerminalTiming {
  status: TerminalStatus;
  /** Accept → start; null when it never started (cancelled or timed out in the queue). */
  queueWaitMs: number | null;
  /** Start → end; null when it never started. */
  runMs: number | null;
  /** When it ended (ms). */
  at: number;
}

export interface Percentiles {
  p50: number | null;
  p99: number | null;
}

export interface TimingSummary {
  windowMs: number;
  /** Terminal executions in the window (at most TIMINGS_KEPT are looked at). */
  executions: number;
  /** Of those, the ones that started (the percentiles are over these). */
  started: number;
  queueWaitMs: Percentiles;
  runMs: Percentiles;
  /** The kept list did not reach back to the window's start: busier than TIMINGS_KEPT per window. */
  truncated: boolean;
}

export interface TerminalRates {
  /** What "per minute" covers: the current 10-s bucket and the five before it (50–60 s). */
  windowMs: number;
  perMinute: Record<TerminalStatus, number>;
}

/** Timing entry of a terminal execution (pure). */
export function terminalTiming(execution: Execution, now: number): TerminalTiming {
  const { acceptedAt, startedAt, finishedAt } = execution.timings;
  const at = finishedAt ?? now;
  const started = startedAt !== undefined && startedAt > 0;
  return {
    status: execution.status as TerminalStatus,
    queueWaitMs: started ? Math.max(0, startedAt - acceptedAt) : null,
    runMs: started ? Math.max(0, at - startedAt) : null,
    at,
  };
}

/** Nearest-rank percentile of an ascending list; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** p50 and p99 of the entries that ended within `windowMs` before `now` (pure). */
export function summariseTimings(entries: readonly TerminalTiming[], windowMs: number, now: number, listFull: boolean): TimingSummary {
  const from = now - windowMs;
  const recent = entries.filter((e) => e.at >= from);
  const started = recent.filter((e) => e.queueWaitMs !== null && e.runMs !== null);
  const ascending = (values: number[]) => values.sort((a, b) => a - b);
  const waits = ascending(started.map((e) => e.queueWaitMs as number));
  const runs = ascending(started.map((e) => e.runMs as number));
  return {
    windowMs,
    executions: recent.length,
    started: started.length,
    queueWaitMs: { p50: percentile(waits, 50), p99: percentile(waits, 99) },
    runMs: { p50: percentile(runs, 50), p99: percentile(runs, 99) },
    truncated: listFull && recent.length === entries.length,
  };
}

/** How long terminal executions wait in this process to be recorded together. */
export const STATS_FLUSH_MS = 1_000;

/**
 * Fleet-wide numbers of terminal executions for the dashboard. `record` is called once per
 * execution that reaches its terminal state (ExecutionRepository.finish, whoever ends it:
 * worker, cancel, sweeper, failover) and costs no Redis command of its own: the process sends
 * what ended in the last STATS_FLUSH_MS together, in one pipeline (one LPUSH of the timings and
 * an LTRIM of the capped list, one HINCRBY per status and 10-second bucket and their EXPIRE), and
 * the rest on `flush` at close. Best effort: a failure is swallowed, and a process that dies
 * takes its last second of figures with it; the executions' own states never depend on them.
 */
export class FleetStats {
  private pending: TerminalTiming[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  record(execution: Execution, now = Date.now()): void {
    this.pending.push(terminalTiming(execution, now));
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), STATS_FLUSH_MS);
    this.timer.unref();
  }

  /** Sends what was recorded and not sent yet. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    // Oldest pushed first, so the list stays newest first.
    const entries = batch.map((t) => JSON.stringify({ s: t.status, w: t.queueWaitMs, r: t.runMs, at: t.at }));
    const pipeline = this.redis.pipeline().lpush(this.keys.statsTimings(), ...entries).ltrim(this.keys.statsTimings(), 0, TIMINGS_KEPT - 1);
    const counts = new Map<string, Map<TerminalStatus, number>>();
    for (const timing of batch) {
      const bucket = this.keys.statsTerminal(Math.floor(timing.at / RATE_BUCKET_MS));
      const byStatus = counts.get(bucket) ?? new Map<TerminalStatus, number>();
      byStatus.set(timing.status, (byStatus.get(timing.status) ?? 0) + 1);
      counts.set(bucket, byStatus);
    }
    for (const [bucket, byStatus] of counts) {
      for (const [status, count] of byStatus) pipeline.hincrby(bucket, status, count);
      pipeline.expire(bucket, RATE_BUCKET_TTL_SECONDS);
    }
    await pipeline.exec().catch(() => undefined);
  }

  /** The kept terminal timings, newest first. */
  async recentTimings(): Promise<TerminalTiming[]> {
    const raw = await this.redis.lrange(this.keys.statsTimings(), 0, TIMINGS_KEPT - 1);
    return raw.flatMap((text) => {
      try {
        const e = JSON.parse(text) as { s: TerminalStatus; w: number | null; r: number | null; at: number };
        return [{ status: e.s, queueWaitMs: e.w, runMs: e.r, at: e.at }];
      } catch {
        return [];
      }
    });
  }

  async timings(windowMs: number, now = Date.now()): Promise<TimingSummary> {
    const entries = await this.recentTimings();
    return summariseTimings(entries, windowMs, now, entries.length >= TIMINGS_KEPT);
  }

  /** Terminal executions per status in the current 10-s bucket and the five before it. */
  async rates(now = Date.now()): Promise<TerminalRates> {
    const current = Math.floor(now / RATE_BUCKET_MS);
    const pipeline = this.redis.pipeline();
    for (let i = 0; i < RATE_BUCKETS; i++) pipeline.hgetall(this.keys.statsTerminal(current - i));
    const replies = (await pipeline.exec()) ?? [];
    const perMinute = Object.fromEntries(TERMINAL_STATUSES.map((s) => [s, 0])) as Record<TerminalStatus, number>;
    for (const [error, counts] of replies) {
      if (error) throw error;
      for (const [status, count] of Object.entries(counts as Record<string, string>)) {
        if (status in perMinute) perMinute[status as TerminalStatus] += Number(count);
      }
    }
    return { windowMs: RATE_BUCKETS * RATE_BUCKET_MS, perMinute };
  }
}
