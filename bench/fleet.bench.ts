/**
 * Fleet figures, run by `npm run bench` after the round trips (or alone:
 * `node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/fleet.bench.ts`):
 *
 * - a new session's first result with the warm kernel pool (default KERNEL_POOL_SIZE=2) and
 *   without it (KERNEL_POOL_SIZE=0), p50 over BENCH_NEW_SESSIONS (20) sessions each, compared to
 *   the warm end-to-end round trip on the same stack, taken in blocks between the new sessions
 *   so both see the same machine noise (goal: with the pool at most 2× warm);
 * - sleep-bound throughput (16 sessions running `time.sleep(0.2)` back to back for
 *   BENCH_SLEEP_TP_MS, 10 s) on 1, 2 and 4 workers of WORKER_CONCURRENCY=4, and the speed-up
 *   over 1 worker (goal ×1.9 and ×3.6).
 */
import type { Execution } from '@kernelfleet/contracts';
import { TestRedis } from '../test/support/redis-server';
import { Stack } from '../test/support/stack';
import { snapshotApps, timeEach } from './app-snapshot';

const NEW_SESSIONS = Number(process.env.BENCH_NEW_SESSIONS ?? 20);
/** Pause after each new session, so the pool has refilled before the next one arrives. */
const POOL_REFILL_MS = Number(process.env.BENCH_POOL_REFILL_MS ?? 2_000);
const SLEEP_TP_MS = Number(process.env.BENCH_SLEEP_TP_MS ?? 10_000);
const SLEEP_SESSIONS = Number(process.env.BENCH_SLEEP_SESSIONS ?? 16);
const SLEEP_CODE = 'time.sleep(0.2)';

export type Row = [string, string, string, string];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function ms(n: number): string {
  return `${n.toFixed(n < 100 ? 2 : 0)} ms`;
}

function expectCompleted(execution: Execution, what: string): Execution {
  if (execution.status !== 'completed') throw new Error(`${what}: ${execution.status} ${JSON.stringify(execution)}`);
  return execution;
}

/** Warm round trips before each new session: the first few after the pause are left out. */
const WARM_BLOCK = 15;
const WARM_BURN_IN = 5;

/**
 * Time to the first result of brand-new sessions (one at a time; each is deleted afterwards),
 * and of warm `1+1` on one session of the same stack, in a block before each new session (the
 * block's first round trips, after the pause, are left out: a kernel idle for a while answers
 * its next cell 1–3 ms slower, docs/benchmarks.md).
 */
async function newSessionSamples(stack: Stack, label: string, n: number, pauseMs: number): Promise<{ samples: number[]; warm: number[]; restarted: number }> {
  const samples: number[] = [];
  const warm: number[] = [];
  let restarted = 0;
  const tag = Math.random().toString(36).slice(2, 8);
  for (let i = -1; i < n; i++) {
    const block = await timeEach(WARM_BLOCK, async () => void expectCompleted(await stack.run(`bench-warm-${label}`, { code: '1+1' }), 'warm'));
    if (i >= 0) warm.push(...block.slice(WARM_BURN_IN));
    const session = `bench-new-${label}-${tag}-${i + 1}`;
    const start = process.hrtime.bigint();
    const execution = expectCompleted(await stack.run(session, { code: '1+1' }), `new session ${session}`);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (i >= 0) {
      samples.push(elapsed);
      if (execution.kernel?.restarted) restarted += 1;
    }
    await stack.request('DELETE', `/v1/sessions/${session}`);
    await sleep(pauseMs);
  }
  return { samples, warm, restarted };
}

/** Executions per second of `sessions` sessions running `time.sleep(0.2)` back to back. */
async function sleepThroughput(stack: Stack, label: string, sessions: number, durationMs: number): Promise<{ rate: number; homes: number[]; startFailures: number }> {
  const names = Array.from({ length: sessions }, (_, i) => `bench-sleep-${label}-${i}`);
  // All sessions start at once, as a burst of new sessions would; a kernel start that hits
  // KERNEL_START_MAX_MS under that burst (failed, phase kernel_start) is tried again.
  let startFailures = 0;
  const warm = await Promise.all(
    names.map(async (s) => {
      for (let attempt = 1; ; attempt++) {
        const e = await stack.run(s, { code: 'import time', timeoutMs: 120_000 });
        if (e.status === 'failed' && e.phase === 'kernel_start' && attempt < 3) {
          startFailures += 1;
          continue;
        }
        return expectCompleted(e, 'sleep warm-up');
      }
    }),
  );
  const homes = new Map<string, number>();
  for (const e of warm) homes.set(e.kernel!.workerId, (homes.get(e.kernel!.workerId) ?? 0) + 1);
  let done = 0;
  const start = Date.now();
  const until = start + durationMs;
  await Promise.all(
    names.map(async (s) => {
      while (Date.now() < until) {
        expectCompleted(await stack.run(s, { code: SLEEP_CODE, timeoutMs: 60_000 }), 'sleep run');
        done += 1;
      }
    }),
  );
  const rate = (done * 1000) / (Date.now() - start);
  await Promise.all(names.map((s) => stack.request('DELETE', `/v1/sessions/${s}`)));
  return { rate, homes: [...homes.values()].sort((a, b) => b - a), startFailures };
}

const p50 = (samples: number[]) => percentile([...samples].sort((a, b) => a - b), 50);

/**
 * Starts its own stacks (the caller's should be stopped: these figures are about a quiet
 * machine) and answers the table rows of the fleet section, and the warm round trip the new
 * sessions were compared to.
 */
export async function fleetRows(): Promise<{ rows: Row[]; warm: number }> {
  const rows: Row[] = [];
  let warm: number;

  // New sessions with the default pool: one worker with default settings.
  const pooled = await Stack.start({ workers: 1 });
  let poolP50: number;
  try {
    await sleep(3_000); // the pool fills in the background after boot
    const { samples, warm: warmSamples, restarted } = await newSessionSamples(pooled, 'pool', NEW_SESSIONS, POOL_REFILL_MS);
    const sorted = [...samples].sort((a, b) => a - b);
    poolP50 = percentile(sorted, 50);
    warm = p50(warmSamples);
    rows.push([
      'new session: 1st result, warm pool (size 2)',
      ms(poolP50),
      `p90 ${ms(percentile(sorted, 90))}`,
      `×${(poolP50 / warm).toFixed(2)} of warm ${ms(warm)} between them (goal ≤2) n=${samples.length}${restarted === samples.length ? '' : ` restarted=${restarted}`}`,
    ]);
  } finally {
    await pooled.stop();
  }

  // Without the pool, then the sleep-bound throughput on 1, 2 and 4 workers of concurrency 4.
  const fleet = await Stack.start({ workers: 1, workerEnv: { KERNEL_POOL_SIZE: '0', WORKER_CONCURRENCY: '4' } });
  try {
    const { samples, warm: warmSamples } = await newSessionSamples(fleet, 'nopool', NEW_SESSIONS, 300);
    const sorted = [...samples].sort((a, b) => a - b);
    const cold = percentile(sorted, 50);
    rows.push(['new session: 1st result, no pool (size 0)', ms(cold), `p90 ${ms(percentile(sorted, 90))}`, `×${(cold / p50(warmSamples)).toFixed(1)} warm, ×${(cold / poolP50).toFixed(1)} pool`]);

    let base = 0;
    for (const workers of [1, 2, 4]) {
      while (fleet.workers.length < workers) await fleet.startWorker({ KERNEL_POOL_SIZE: '0', WORKER_CONCURRENCY: '4' });
      const { rate, homes, startFailures } = await sleepThroughput(fleet, `w${workers}`, SLEEP_SESSIONS, SLEEP_TP_MS);
      if (workers === 1) base = rate;
      const ideal = (workers * 4) / 0.2;
      const goal = workers === 2 ? ' (goal ×1.9)' : workers === 4 ? ' (goal ×3.6)' : '';
      rows.push([
        `sleep(0.2) × ${SLEEP_SESSIONS} sessions, ${workers} worker${workers > 1 ? 's' : ''} × 4`,
        `${rate.toFixed(1)}/s`,
        `ideal ${ideal.toFixed(0)}/s`,
        `×${(rate / base).toFixed(2)} of 1 worker${goal}; homes ${homes.join('/')}${startFailures ? `; ${startFailures} kernel start(s) failed in warm-up` : ''}`,
      ]);
    }
  } finally {
    await fleet.stop();
  }
  return { rows, warm };
}

if (require.main === module) {
  void (async () => {
    const apps = process.env.KF_APP_ROOT ? undefined : snapshotApps();
    const redis = process.env.KF_TEST_REDIS_URL ? undefined : await TestRedis.start();
    process.env.KF_TEST_REDIS_URL ??= redis!.url;
    try {
      const { rows, warm } = await fleetRows();
      const widths = [46, 16, 16, 16];
      const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
      console.log(line(['measure', 'p50 / rate', 'p90 / ideal', 'note']));
      console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
      console.log(line(['warm 1+1 end to end, between the new sessions', ms(warm), '', '']));
      for (const row of rows) console.log(line(row));
    } finally {
      await redis?.stop();
      apps?.remove();
    }
  })().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
