/**
 * `npm run chaos`: many executions over many sessions on a fleet of workers while workers are
 * killed with SIGKILL and replaced (alternately under a new WORKER_ID and under the same one, a
 * restart). At the end it checks the invariants of docs/architecture.md / DESIGN §2 from the
 * client's side and prints a table; the exit code is 0 only when every check holds.
 * CHAOS_FLEET=containers runs it against docker-compose.yml's fleet in containers instead (the
 * images of `npm run images`): worker containers are `docker kill`ed and started again, Redis is
 * restarted once and an api replica killed once (bench/chaos-fleets.ts; the soak of
 * docs/operations.md).
 *
 * Environment (defaults): CHAOS_FLEET=processes CHAOS_APIS=2 (containers) CHAOS_EXECUTIONS=2000 CHAOS_SESSIONS=50 CHAOS_WORKERS=3
 * CHAOS_KILL_EVERY_MS=4000 CHAOS_MAX_SECONDS=600 CHAOS_IN_FLIGHT=100 CHAOS_LEASE_MS=2000
 * CHAOS_RETRY_FRACTION=0.1 (share of executions sent with retryOnKernelLoss)
 * CHAOS_TIMEOUT_MS=300000 (each execution's timeoutMs) CHAOS_REPLAY_SAMPLE=300 (SSE replays
 * read at the end besides every outcome_unknown / retried / suspicious one) CHAOS_STUCK_MS=15000
 * (a lane head unchanged this long gets its Redis/BullMQ state dumped) CHAOS_SEED
 * CHAOS_LOG_DIR (logs, problems.txt, executions.json, strikes.json, stuck.json; default a new dir
 * under /tmp). What is checked: docs/benchmarks.md, "Chaos".
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { Execution, ExecutionStatus } from '@kernelfleet/contracts';
import { buildImages } from '../test/support/docker-images';
import { TEST_TENANT } from '../test/support/fleet-client';
import { connectTestRedis, keysMatching } from '../test/support/redis-client';
import { TestRedis } from '../test/support/redis-server';
import { snapshotApps, runMain } from './app-snapshot';
import { readSse, type SseEvent } from '../test/support/sse-client';
import { ContainerChaosFleet, ProcessChaosFleet, type ChaosFleet } from './chaos-fleets';

const env = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: must be a non-negative number, got ${raw}`);
  return n;
};

const FLEET = process.env.CHAOS_FLEET ?? 'processes';
if (!['processes', 'containers'].includes(FLEET)) throw new Error(`CHAOS_FLEET: processes or containers, got ${FLEET}`);

const CFG = {
  fleet: FLEET,
  apis: Math.max(1, env('CHAOS_APIS', 2)),
  executions: env('CHAOS_EXECUTIONS', 2000),
  sessions: Math.max(1, env('CHAOS_SESSIONS', 50)),
  workers: Math.max(1, env('CHAOS_WORKERS', 3)),
  killEveryMs: env('CHAOS_KILL_EVERY_MS', 4000),
  maxSeconds: env('CHAOS_MAX_SECONDS', 600),
  inFlight: Math.max(1, env('CHAOS_IN_FLIGHT', 100)),
  leaseMs: env('CHAOS_LEASE_MS', 2000),
  retryFraction: env('CHAOS_RETRY_FRACTION', 0.1),
  timeoutMs: env('CHAOS_TIMEOUT_MS', 300_000),
  replaySample: env('CHAOS_REPLAY_SAMPLE', 300),
  seed: env('CHAOS_SEED', Math.floor(Math.random() * 2 ** 31)),
};

const TERMINAL: ExecutionStatus[] = ['completed', 'failed', 'cancelled', 'timed_out', 'outcome_unknown'];
const isTerminal = (s: string | undefined) => s !== undefined && (TERMINAL as string[]).includes(s);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const since = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1);

/** mulberry32: a small seeded PRNG, so a run can be repeated with CHAOS_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(CFG.seed);
const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

/** One planned execution and everything the client learnt about it. */
interface Planned {
  index: number;
  token: string;
  sessionId: string;
  retry: boolean;
  executionId?: string;
  seq?: number;
  submitAttempts: number;
  submitErrors: string[];
  /** Events as received on the live stream (attached right after the 202, resumed on drops). */
  live: SseEvent[];
  liveReconnects: number;
  liveError?: string;
  liveResult?: Execution;
  final?: Execution;
  replay?: SseEvent[];
  /** From the output of a completed run: the kernel's own record of what ran on it. */
  kernelLog?: string[];
}

/** The code: appends its token to a list kept in the kernel and prints the whole list. */
function codeFor(token: string): string {
  return [
    'import time as _t, random as _r',
    "_kf = globals().setdefault('_kf_log', [])",
    `_kf.append('${token}')`,
    "print('KF', len(_kf), ','.join(_kf))",
    '_t.sleep(_r.random() * 0.03)',
  ].join('\n');
}

function parseKernelLog(output: string | undefined): string[] | undefined {
  const m = /^KF (\d+) (\S+)$/m.exec(output ?? '');
  if (!m) return undefined;
  const log = m[2].split(',');
  return log.length === Number(m[1]) ? log : undefined;
}

/** A lane head that stayed queued (or running) far longer than any execution here takes. */
interface Stuck {
  at: number;
  sessionId: string;
  executionId: string;
  headForMs: number;
  detail: Record<string, unknown>;
}

/** Redis and BullMQ state of a lane head, for the report of a stuck one. */
async function redisState(redis: Redis | Cluster, prefix: string, sessionId: string, executionId: string): Promise<Record<string, unknown>> {
  const base = `${prefix}:{${TEST_TENANT}/${sessionId}}`;
  const exec = await redis.hgetall(`${base}:x:${executionId}`);
  delete exec.code;
  delete exec.doc;
  delete exec.request;
  const info = await redis.hgetall(`${base}:info`);
  const workerIds = await redis.zrange(`${prefix}:workers`, 0, -1);
  const leases: Record<string, boolean> = {};
  for (const id of workerIds) leases[id] = (await redis.exists(`${prefix}:worker:${id}:lease`)) === 1;
  const jobs: Record<string, unknown> = {};
  const inboxes: Record<string, string | null> = {};
  for (const id of workerIds) inboxes[id] = await redis.zscore(`${prefix}:worker:${id}:inbox`, `${TEST_TENANT}/${sessionId}/${executionId}`);
  for (const queue of ['kf-shared']) {
    const q = `${prefix}:bull:{${queue}}:${queue}`;
    const job = await redis.hgetall(`${q}:${executionId}`);
    if (!Object.keys(job).length) continue;
    const [wait, active, paused] = await Promise.all(['wait', 'active', 'paused'].map((l) => redis.lpos(`${q}:${l}`, executionId)));
    const [delayed, prioritized, failed, completed] = await Promise.all(['delayed', 'prioritized', 'failed', 'completed'].map((z) => redis.zscore(`${q}:${z}`, executionId)));
    jobs[queue] = {
      in: { wait, active, paused, delayed, prioritized, failed, completed },
      lock: await redis.get(`${q}:${executionId}:lock`),
      stalled: await redis.sismember(`${q}:stalled`, executionId),
      fields: Object.fromEntries(Object.entries(job).filter(([k]) => ['timestamp', 'processedOn', 'finishedOn', 'failedReason', 'stc', 'atm', 'ats', 'attemptsMade', 'stalledCounter'].includes(k))),
    };
  }
  const members = await redis.zrange(`${prefix}:workers`, 0, -1);
  return { now: Date.now(), exec, info, lane: await redis.lrange(`${base}:lane`, 0, 5), leases, members, jobs, inboxes };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const hardStop = t0 + CFG.maxSeconds * 1000;
  const stopAll = new AbortController();
  const hardTimer = setTimeout(() => stopAll.abort(), CFG.maxSeconds * 1000);
  const logDir = process.env.CHAOS_LOG_DIR ?? mkdtempSync(join(tmpdir(), 'kf-chaos-'));
  mkdirSync(logDir, { recursive: true });
  console.error(`chaos: seed=${CFG.seed} ${JSON.stringify(CFG)} logs in ${logDir}`);

  const apps = FLEET === 'processes' ? (process.env.KF_APP_ROOT ? { dir: process.env.KF_APP_ROOT, remove: () => undefined } : snapshotApps()) : undefined;
  if (FLEET === 'containers') buildImages();
  const build = (() => {
    try {
      const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: join(__dirname, '..') }).toString().trim();
      const dirty = execFileSync('git', ['status', '--porcelain', 'apps', 'libs'], { cwd: join(__dirname, '..') }).toString().trim().split('\n').filter(Boolean).length;
      return `${head}${dirty ? ` + ${dirty} changed file(s) in apps/libs` : ''}`;
    } catch {
      return 'unknown';
    }
  })();
  const redis = FLEET === 'processes' && !process.env.KF_TEST_REDIS_URL ? await TestRedis.start() : undefined;
  if (redis) process.env.KF_TEST_REDIS_URL = redis.url;
  // Strikes expected over the run, for the containers' once-only Redis restart and api kill.
  // (Assumes 20 executions/s: a faster run still has both within its first half.)
  const expectedStrikes = Math.max(3, Math.floor(((CFG.executions / 20) * 1000) / Math.max(1, CFG.killEveryMs)));
  let fleet: ChaosFleet | undefined;

  let runner: Promise<void> | undefined;
  let finished = false;
  try {
    fleet =
      FLEET === 'containers'
        ? await ContainerChaosFleet.start({ workers: CFG.workers, apis: CFG.apis, leaseMs: CFG.leaseMs, expectedStrikes })
        : await ProcessChaosFleet.start(CFG.workers, CFG.leaseMs);
    const f = fleet;
    const client = f.client;
    console.error(`chaos: ${CFG.workers} worker(s) ready after ${since(t0)} s (${FLEET})`);

    // The plan: N executions spread evenly over M sessions, shuffled (interleaved).
    const plan: Planned[] = [];
    for (let i = 0; i < CFG.executions; i++) {
      plan.push({
        index: i,
        token: `k${i.toString(36)}`,
        sessionId: `chaos-${i % CFG.sessions}`,
        retry: random() < CFG.retryFraction,
        submitAttempts: 0,
        submitErrors: [],
        live: [],
        liveReconnects: 0,
      });
    }
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [plan[i], plan[j]] = [plan[j], plan[i]];
    }
    const runTag = `chaos-${CFG.seed}-${f.prefix}`;

    // --- killer: a strike every CHAOS_KILL_EVERY_MS (bench/chaos-fleets.ts says what a strike is).
    const killer = (async () => {
      for (let n = 1; !finished && !stopAll.signal.aborted; n++) {
        await sleep(CFG.killEveryMs);
        if (finished || stopAll.signal.aborted) break;
        await f.strike(n, random);
        const last = f.strikes.at(-1);
        if (last && last.at >= Date.now() - CFG.killEveryMs) console.error(`chaos: t=${since(t0)} s strike #${f.strikes.length}: ${last.kind} ${last.target} (${last.replacement})`);
      }
    })();

    // --- client: submit with a bounded number in flight; follow each execution's live stream.
    let inFlight = 0;
    const slotFreed: (() => void)[] = [];
    const acquire = async () => {
      while (inFlight >= CFG.inFlight) await new Promise<void>((r) => slotFreed.push(r));
      inFlight += 1;
    };
    const release = () => {
      inFlight -= 1;
      slotFreed.shift()?.();
    };

    /** The api replicas in turn: a retry goes to the next one (one may be down). */
    const urlFor = (attempt: number) => client.urls[attempt % client.urls.length];
    const submitOne = async (p: Planned): Promise<boolean> => {
      const body = { code: codeFor(p.token), timeoutMs: CFG.timeoutMs, ...(p.retry ? { retryOnKernelLoss: true } : {}) };
      for (let backoff = 50; !stopAll.signal.aborted; backoff = Math.min(backoff * 2, 2_000)) {
        p.submitAttempts += 1;
        try {
          const res = await client.request('POST', `/v1/sessions/${p.sessionId}/executions`, body, {
            url: urlFor(p.submitAttempts),
            headers: { 'Idempotency-Key': `${runTag}-${p.token}` },
          });
          if (res.status === 202) {
            p.executionId = res.json.executionId;
            p.seq = res.json.seq;
            return true;
          }
          p.submitErrors.push(`${res.status} ${res.text.slice(0, 200)}`);
          // Retried: 5xx (Redis away), 429, and what says when to come back (Retry-After: a 409 for an
          // Idempotency-Key whose first request is still being accepted, as the client library does).
          if (res.status < 500 && res.status !== 429 && !res.headers.has('retry-after')) return false;
        } catch (error) {
          p.submitErrors.push(String(error));
        }
        await sleep(backoff);
      }
      return false;
    };

    const follow = async (p: Planned): Promise<void> => {
      while (!stopAll.signal.aborted) {
        const url = `${urlFor(p.liveReconnects)}/v1/executions/${p.executionId}/events`;
        const last = p.live.at(-1)?.id;
        try {
          const remaining = Math.max(1_000, hardStop - Date.now());
          const { status, events } = await readSse(
            url,
            { ...client.headers(), ...(last ? { 'Last-Event-ID': last } : {}) },
            (evs) => evs.some((e) => e.event === 'result') || stopAll.signal.aborted,
            remaining,
          );
          if (status !== 200) p.liveError = `events answered ${status}`;
          p.live.push(...events);
          const result = events.find((e) => e.event === 'result');
          if (result) {
            p.liveResult = JSON.parse(result.data) as Execution;
            return;
          }
          // 503 while Redis is down: attach again; any other answer is final.
          if (status !== 200 && status !== 503) return;
        } catch (error) {
          p.liveError = String(error);
        }
        p.liveReconnects += 1;
        await sleep(100);
      }
    };

    let accepted = 0;
    let done = 0;
    const progress = setInterval(() => {
      const { ready, booting } = f.workersUp();
      console.error(
        `chaos: t=${since(t0)} s accepted ${accepted}/${plan.length}, terminal ${done}, in flight ${inFlight}, ` +
          `workers ready ${ready} booting ${booting}, strikes ${f.strikes.length}`,
      );
    }, 10_000);
    progress.unref();

    // --- watcher: a lane head queued/running for long gets its Redis and BullMQ state dumped.
    const stuck: Stuck[] = [];
    const watchRedis = connectTestRedis(f.redisUrl);
    const headSeen = new Map<string, { id: string; since: number; dumped: boolean }>();
    const stuckMs = env('CHAOS_STUCK_MS', 15_000);
    const watcher = (async () => {
      const sessionIds = [...new Set(plan.map((p) => p.sessionId))];
      while (!finished && !stopAll.signal.aborted) {
        await sleep(2_000);
        try {
          for (const sessionId of sessionIds) {
            const base = `${f.prefix}:{${TEST_TENANT}/${sessionId}}`;
            const head = await watchRedis.lindex(`${base}:lane`, 0);
            const seen = headSeen.get(sessionId);
            if (!head) {
              headSeen.delete(sessionId);
              continue;
            }
            if (!seen || seen.id !== head) {
              headSeen.set(sessionId, { id: head, since: Date.now(), dumped: false });
              continue;
            }
            if (seen.dumped || Date.now() - seen.since < stuckMs) continue;
            seen.dumped = true;
            stuck.push({ at: Date.now(), sessionId, executionId: head, headForMs: Date.now() - seen.since, detail: await redisState(watchRedis, f.prefix, sessionId, head) });
            console.error(`chaos: t=${since(t0)} s lane head ${head} of ${sessionId} unchanged for ${stuckMs / 1000} s (state dumped)`);
          }
        } catch (error) {
          console.error(`chaos: watcher: ${error}`);
        }
      }
    })();

    runner = (async () => {
      const followers: Promise<void>[] = [];
      for (const p of plan) {
        if (stopAll.signal.aborted) break;
        await acquire();
        const ok = await submitOne(p);
        if (!ok) {
          release();
          continue;
        }
        accepted += 1;
        followers.push(
          follow(p).finally(() => {
            done += p.liveResult ? 1 : 0;
            release();
          }),
        );
      }
      await Promise.all(followers);
    })();
    await Promise.race([runner, new Promise((r) => stopAll.signal.addEventListener('abort', r))]);
    const runWallMs = Date.now() - t0;
    const timedOut = stopAll.signal.aborted;
    finished = true;
    clearInterval(progress);
    stopAll.abort(); // ends any follower still reading
    await killer;
    await watcher;
    watchRedis.disconnect();
    await runner.catch(() => undefined);
    // Replacements that are still booting: let them come up so their recovery runs, bounded.
    await f.settle();
    console.error(`chaos: run phase over after ${(runWallMs / 1000).toFixed(1)} s (${timedOut ? 'time limit' : 'all terminal'}); checking`);

    // --- final state of every accepted execution.
    const acceptedPlan = plan.filter((p) => p.executionId);
    await pool(acceptedPlan, 16, async (p) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          p.final = await client.get(p.executionId!);
          return;
        } catch {
          await sleep(200);
        }
      }
    });
    for (const p of acceptedPlan) {
      if (p.final?.status === 'completed') p.kernelLog = parseKernelLog(p.final.result?.output);
    }

    const byToken = new Map(plan.map((p) => [p.token, p]));
    const problems: string[] = [];
    const note = (check: string, detail: string) => problems.push(`${check}: ${detail}`);

    // Replays read at the end: all outcome_unknown, all retried, a random sample, anything odd.
    const replayIds = new Set<Planned>();
    for (const p of acceptedPlan) {
      const started = p.live.filter((e) => e.event === 'started').length;
      if (p.final?.status === 'outcome_unknown' || (p.retry && started > 1) || p.liveError || p.final?.status !== p.liveResult?.status) {
        replayIds.add(p);
      }
    }
    for (const p of [...acceptedPlan].sort(() => random() - 0.5).slice(0, CFG.replaySample)) replayIds.add(p);
    await pool([...replayIds], 8, async (p) => {
      try {
        const { events } = await readSse(`${client.url}/v1/executions/${p.executionId}/events`, { ...client.headers(), 'Last-Event-ID': '0' }, () => false, 30_000);
        p.replay = events;
      } catch (error) {
        note('replay', `${p.executionId} replay failed: ${error}`);
      }
    });

    // --- checks.
    const counts: Record<string, number> = Object.fromEntries(TERMINAL.map((s) => [s, 0]));
    const nonTerminal: Planned[] = [];
    for (const p of acceptedPlan) {
      if (p.final && isTerminal(p.final.status)) counts[p.final.status] += 1;
      else nonTerminal.push(p);
    }
    for (const p of nonTerminal) note('non-terminal', `${p.executionId} (${p.sessionId} seq ${p.seq}) is ${p.final?.status ?? 'unreadable'}`);
    const notAccepted = plan.length - acceptedPlan.length;
    for (const p of plan.filter((x) => !x.executionId)) note('not accepted', `${p.token} ${p.sessionId}: ${p.submitErrors.slice(-1)[0] ?? 'never submitted'}`);

    /** Event-stream check shared by live and replay reads: ids 1..n, one result, result last. */
    const streamFaults = (p: Planned, events: SseEvent[], what: string): string[] => {
      const faults: string[] = [];
      const results = events.filter((e) => e.event === 'result');
      if (results.length !== 1) faults.push(`${what}: ${results.length} result events`);
      if (events.length && events.at(-1)!.event !== 'result') faults.push(`${what}: last event is ${events.at(-1)!.event}`);
      events.forEach((e, i) => {
        if (Number(e.id) !== i + 1) faults.push(`${what}: event #${i + 1} has id ${e.id}`);
      });
      // A re-run after a kernel loss starts again. Code that never reached a kernel may be re-run
      // any number of times; an attempt that produced output ran, and only retryOnKernelLoss
      // allows one more after it.
      const attempts: string[][] = [];
      for (const e of events) {
        if (e.event === 'started') attempts.push([]);
        else if (attempts.length && e.event !== 'result') attempts.at(-1)!.push(e.event ?? '');
      }
      const ranBefore = attempts.slice(0, -1).filter((a) => a.length > 0).length;
      if (ranBefore > (p.retry ? 1 : 0)) faults.push(`${what}: re-run after ${ranBefore} attempt(s) that produced output`);
      const r = results.at(-1);
      if (r && p.final && (JSON.parse(r.data) as Execution).status !== p.final.status) {
        faults.push(`${what}: result says ${(JSON.parse(r.data) as Execution).status}, GET says ${p.final.status}`);
      }
      return [...new Set(faults)].slice(0, 3);
    };
    let multiResultReplay = 0;
    let replayFaulty = 0;
    let liveFaulty = 0;
    let replayed = 0;
    for (const p of acceptedPlan) {
      if (p.replay) {
        replayed += 1;
        if (p.replay.filter((e) => e.event === 'result').length > 1) multiResultReplay += 1;
        const f = streamFaults(p, p.replay, 'replay');
        if (f.length) (replayFaulty += 1), note('replay stream', `${p.executionId}: ${f.join('; ')}`);
      }
      if (isTerminal(p.final?.status)) {
        const f = streamFaults(p, p.live, 'live');
        if (f.length) (liveFaulty += 1), note('live stream', `${p.executionId} (${p.liveReconnects} reconnects): ${f.join('; ')}`);
      }
    }

    // Per session: order, overlap, kernel record, generations and stateLost.
    const sessions = new Map<string, Planned[]>();
    for (const p of acceptedPlan) sessions.set(p.sessionId, [...(sessions.get(p.sessionId) ?? []), p]);
    let orderViolations = 0;
    let overlapViolations = 0;
    let kernelRecordFaults = 0;
    const ranTwice = new Set<string>();
    let kernelLosses = 0;
    let stateLostReported = 0;
    let stateLostMissing = 0;
    let stateLostSpurious = 0;
    let ranElsewhere = 0;
    for (const [sessionId, list] of sessions) {
      const bySeq = [...list].sort((a, b) => a.seq! - b.seq!);
      // (1) seqs given at accept are 1..n without gaps (one client, one submit each).
      bySeq.forEach((p, i) => {
        if (i > 0 && p.seq! <= bySeq[i - 1].seq!) note('seq', `${sessionId}: seq ${p.seq} given twice`);
      });
      // (2) order by the kernel's own record: completed runs sorted by (generation, position).
      const completed = bySeq.filter((p) => p.final?.status === 'completed' && p.kernelLog && p.final.kernel);
      const byKernel = [...completed].sort(
        (a, b) => a.final!.kernel!.generation - b.final!.kernel!.generation || a.kernelLog!.length - b.kernelLog!.length,
      );
      for (let i = 1; i < byKernel.length; i++) {
        if (byKernel[i].seq! <= byKernel[i - 1].seq!) {
          orderViolations += 1;
          note('order (kernel record)', `${sessionId}: seq ${byKernel[i].seq} (${byKernel[i].executionId}) ran after seq ${byKernel[i - 1].seq} (${byKernel[i - 1].executionId})`);
        }
      }
      // (3) order and overlap by the timings of every execution that started.
      const startedRuns = bySeq.filter((p) => p.final?.timings.startedAt !== undefined);
      const byStart = [...startedRuns].sort((a, b) => a.final!.timings.startedAt! - b.final!.timings.startedAt! || a.seq! - b.seq!);
      for (let i = 1; i < byStart.length; i++) {
        const [a, b] = [byStart[i - 1], byStart[i]];
        if (b.seq! < a.seq!) {
          orderViolations += 1;
          note('order (startedAt)', `${sessionId}: seq ${b.seq} (${b.executionId}) started before seq ${a.seq} (${a.executionId})`);
        }
        const aEnd = a.final!.timings.finishedAt ?? Number.POSITIVE_INFINITY;
        if (aEnd > b.final!.timings.startedAt!) {
          overlapViolations += 1;
          note(
            'overlap',
            `${sessionId}: seq ${a.seq} ${a.executionId} [${a.final!.timings.startedAt}, ${aEnd}] ${a.final!.status} on ${a.final!.kernel?.workerId} ` +
              `overlaps seq ${b.seq} ${b.executionId} [${b.final!.timings.startedAt}, ${b.final!.timings.finishedAt}] ${b.final!.status} on ${b.final!.kernel?.workerId}`,
          );
        }
      }
      // (4) the kernel's record: what ran on each kernel generation, as seen by completed runs.
      const gens = new Map<number, Planned[]>();
      for (const p of completed) gens.set(p.final!.kernel!.generation, [...(gens.get(p.final!.kernel!.generation) ?? []), p]);
      const seenIn = new Map<string, Set<number>>();
      for (const [gen, runs] of gens) {
        const longest = runs.reduce((a, b) => (b.kernelLog!.length > a.kernelLog!.length ? b : a));
        for (const p of runs) {
          const log = p.kernelLog!;
          const prefixOk = log.every((t, i) => longest.kernelLog![i] === t);
          if (!prefixOk || log.at(-1) !== p.token) {
            kernelRecordFaults += 1;
            note('kernel record', `${sessionId} gen ${gen}: ${p.executionId} saw [${log.join(',')}], longest run saw [${longest.kernelLog!.join(',')}]`);
          }
        }
        const log = longest.kernelLog!;
        for (let i = 0; i < log.length; i++) {
          const q = byToken.get(log[i]);
          if (!q || q.sessionId !== sessionId) {
            kernelRecordFaults += 1;
            note('kernel record', `${sessionId} gen ${gen}: foreign token ${log[i]}`);
            continue;
          }
          seenIn.set(q.token, new Set([...(seenIn.get(q.token) ?? []), gen]));
          if (i > 0 && q.seq! <= byToken.get(log[i - 1])!.seq!) {
            orderViolations += 1;
            note('order (kernel record)', `${sessionId} gen ${gen}: kernel ran seq ${q.seq} after seq ${byToken.get(log[i - 1])!.seq}`);
          }
          if (log.indexOf(log[i]) !== i) {
            ranTwice.add(q.token);
            note('ran twice', `${sessionId} gen ${gen}: ${q.executionId} (seq ${q.seq}) ran twice on one kernel`);
          }
          // Something that ran on this kernel must say it ran there (or that its outcome is unknown).
          const st = q.final?.status;
          if (st !== 'completed' && st !== 'outcome_unknown' && !(st === 'failed' && q.final?.phase === 'run')) {
            ranElsewhere += 1;
            note('ran though not reported', `${q.executionId} (seq ${q.seq}) is in ${sessionId} gen ${gen}'s record but ended ${st} phase ${q.final?.phase}`);
          } else if (st === 'completed' && q.final!.kernel!.generation !== gen) {
            ranTwice.add(q.token);
            note('ran twice', `${q.executionId} (seq ${q.seq}) completed on gen ${q.final!.kernel!.generation} but also ran on gen ${gen}`);
          }
        }
      }
      // (5) generations never go back; the first run on a new kernel reports stateLost (unless
      // the session never had one); no other run does; a run that reports the same kernel as
      // the previous one sees that kernel's state (its record grew by exactly the runs between).
      let prevGen = 0;
      let genRuns: Planned[] = [];
      for (const p of bySeq) {
        const k = p.final?.kernel;
        if (!k || p.final?.phase !== 'run') continue;
        const st = p.final.status;
        if (k.generation < prevGen) {
          orderViolations += 1;
          note('generation', `${sessionId}: ${p.executionId} seq ${p.seq} reports generation ${k.generation} after ${prevGen}`);
          continue;
        }
        if (st === 'outcome_unknown') {
          // Failover ends it with the generation it ran on and stateLost: true (its kernel died).
          if (k.generation > prevGen && prevGen > 0) kernelLosses += 1;
          prevGen = k.generation;
          genRuns = [];
          continue;
        }
        if (k.generation > prevGen) {
          const expectLost = prevGen > 0;
          if (expectLost) kernelLosses += 1;
          if (k.stateLost) stateLostReported += 1;
          if (expectLost && !k.stateLost) {
            stateLostMissing += 1;
            note('stateLost missing', `${sessionId}: ${p.executionId} seq ${p.seq} is the first run on generation ${k.generation} (after ${prevGen}) on ${k.workerId} but stateLost=false`);
          }
          if (!expectLost && k.stateLost) {
            stateLostSpurious += 1;
            note('stateLost spurious', `${sessionId}: ${p.executionId} seq ${p.seq} first kernel of the session but stateLost=true`);
          }
          if (!k.restarted) kernelRecordFaults += 1, note('restarted missing', `${sessionId}: ${p.executionId} seq ${p.seq} new generation ${k.generation} but restarted=false`);
          if (st === 'completed' && p.kernelLog && p.kernelLog.length !== 1) {
            kernelRecordFaults += 1;
            note('fresh kernel not fresh', `${sessionId}: ${p.executionId} gen ${k.generation} first run saw [${p.kernelLog.join(',')}]`);
          }
          prevGen = k.generation;
          genRuns = [p];
          continue;
        }
        // Same generation as the previous run.
        if (k.stateLost) {
          stateLostSpurious += 1;
          note('stateLost spurious', `${sessionId}: ${p.executionId} seq ${p.seq} gen ${k.generation} continues a kernel but stateLost=true`);
        }
        if (st === 'completed' && p.kernelLog) {
          const expected = [...genRuns.filter((q) => q.final?.status === 'completed' || (q.final?.status === 'failed' && q.final.phase === 'run')), p].map((q) => q.token);
          if (expected.join(',') !== p.kernelLog.join(',')) {
            kernelRecordFaults += 1;
            note('silent state change', `${sessionId}: ${p.executionId} seq ${p.seq} gen ${k.generation} on ${k.workerId} saw [${p.kernelLog.join(',')}], expected [${expected.join(',')}]`);
          }
        }
        genRuns.push(p);
      }
      for (const [token, gs] of seenIn) {
        const q = byToken.get(token)!;
        if (gs.size > (q.retry ? 2 : 1)) {
          ranTwice.add(q.token);
          note('ran twice', `${q.executionId} (seq ${q.seq}) ran on generations ${[...gs].join(',')}`);
        }
      }
    }

    // How long each lane head waited to start (from accept, or from its predecessor's end).
    const headWaits: { ms: number; p: Planned }[] = [];
    let neverRan = 0;
    for (const list of sessions.values()) {
      const bySeq = [...list].sort((a, b) => a.seq! - b.seq!);
      bySeq.forEach((p, i) => {
        const startedAt = p.final?.timings.startedAt;
        if (startedAt === undefined) return;
        const prevEnd = i > 0 ? bySeq[i - 1].final?.timings.finishedAt ?? 0 : 0;
        headWaits.push({ ms: startedAt - Math.max(p.final!.timings.acceptedAt, prevEnd), p });
      });
      // outcome_unknown whose code cannot have run: its worker never had the session's kernel
      // (that generation ran elsewhere, or there was none yet) — it was lost during kernel start.
      for (const p of bySeq.filter((x) => x.final?.status === 'outcome_unknown')) {
        const k = p.final!.kernel;
        if (!k) continue;
        const sameGenElsewhere = bySeq.some((q) => q !== p && q.final?.kernel?.generation === k.generation && q.final.kernel.workerId !== k.workerId && q.final.status !== 'outcome_unknown');
        if (k.generation === 0 || sameGenElsewhere) {
          neverRan += 1;
          note('outcome_unknown, never ran', `${p.executionId} (${p.sessionId} seq ${p.seq}) on ${k.workerId} gen ${k.generation}: that kernel was not on this worker`);
        }
      }
    }
    headWaits.sort((a, b) => a.ms - b.ms);
    const slowHeads = headWaits.filter((h) => h.ms > 10_000);
    for (const h of slowHeads.slice(-20)) {
      note('slow lane head', `${h.p.executionId} (${h.p.sessionId} seq ${h.p.seq}${h.p.retry ? ', retryOnKernelLoss' : ''}) waited ${(h.ms / 1000).toFixed(1)} s to start; ${h.p.final?.status} on ${h.p.final?.kernel?.workerId}; events ${h.p.live.map((e) => e.event).join(',')}`);
    }
    for (const st of stuck) note('stuck head (dump)', `${st.executionId} ${st.sessionId} t=${((st.at - t0) / 1000).toFixed(1)} s: ${JSON.stringify(st.detail).slice(0, 1500)}`);

    // --- leftovers in Redis: lanes that still hold ids, running indexes, queued jobs.
    const probe = connectTestRedis(f.redisUrl);
    let laneLeft = 0;
    for (const sessionId of sessions.keys()) {
      const key = `${f.prefix}:{${TEST_TENANT}/${sessionId}}:lane`;
      const ids = await probe.lrange(key, 0, -1);
      if (ids.length) (laneLeft += ids.length), note('lane not empty', `${sessionId}: ${ids.join(',')}`);
    }
    const deadlineMembers = await probe.zrange(`${f.prefix}:deadlines`, 0, -1);
    const deadlinesLeft = deadlineMembers.length;
    for (const m of deadlineMembers.slice(0, 20)) {
      const p = byToken.get(acceptedPlan.find((q) => m.endsWith(`/${q.executionId}`))?.token ?? '');
      note('deadline index entry left', `${m} (${p ? `${p.final?.status} phase ${p.final?.phase}` : 'unknown'})`);
    }
    const runningLeft: string[] = [];
    for (const key of await keysMatching(probe, `${f.prefix}:worker:*:running`)) {
      const members = await probe.smembers(key);
      if (members.length) runningLeft.push(`${key}: ${members.join(',')}`);
    }
    probe.disconnect();
    for (const r of runningLeft) note('running index left', r);

    // --- logs.
    const procs = await f.logs();
    for (const proc of procs) writeFileSync(join(logDir, `${proc.name}.log`), proc.output);
    const errorLines = procs.flatMap((proc) =>
      proc.output
        .split('\n')
        .filter((l) => /\b(ERROR|error|failed|Unhandled|exception)\b/.test(l) && !/pool kernel/.test(l))
        .map((l) => `${proc.name}: ${l.replace(/\x1b\[[0-9;]*m/g, '').trim()}`),
    );
    writeFileSync(join(logDir, 'problems.txt'), problems.join('\n') + '\n');
    writeFileSync(
      join(logDir, 'executions.json'),
      JSON.stringify(
        acceptedPlan.map((p) => ({
          token: p.token,
          sessionId: p.sessionId,
          seq: p.seq,
          executionId: p.executionId,
          retry: p.retry,
          status: p.final?.status,
          phase: p.final?.phase,
          kernel: p.final?.kernel,
          timings: p.final?.timings,
          kernelLog: p.kernelLog,
          live: p.live.map((e) => `${e.id}:${e.event}`).join(' '),
          liveReconnects: p.liveReconnects,
        })),
      ),
    );
    writeFileSync(join(logDir, 'strikes.json'), JSON.stringify(f.strikes, null, 1));
    writeFileSync(join(logDir, 'stuck.json'), JSON.stringify(stuck, null, 1));

    // --- table.
    const wallS = (Date.now() - t0) / 1000;
    const workerKills = f.strikes.filter((k) => k.orphans !== undefined);
    const orphanMax = Math.max(0, ...workerKills.map((k) => k.orphansGoneAfterMs ?? 60_000));
    const orphanLeft = workerKills.reduce((n, k) => n + (k.orphansAliveAt60s ?? 0), 0);
    const pct = (q: number) => (headWaits.length ? headWaits[Math.min(headWaits.length - 1, Math.floor(q * headWaits.length))].ms : 0);
    const rows: [string, string, string][] = [];
    /** ok: a check (FAIL fails the run); 'warn': worth a look, does not fail the run. */
    const row = (what: string, value: string | number, ok?: boolean | 'warn') =>
      rows.push([what, String(value), ok === undefined ? '' : ok === 'warn' ? 'warn' : ok ? 'ok' : 'FAIL']);
    row('executions planned / accepted', `${plan.length} / ${acceptedPlan.length}`, notAccepted === 0);
    for (const s of TERMINAL) row(`  terminal: ${s}`, counts[s]);
    row('  retryOnKernelLoss requested / started more than once', `${acceptedPlan.filter((p) => p.retry).length} / ${acceptedPlan.filter((p) => p.live.filter((e) => e.event === 'started').length > 1).length}`);
    row('non-terminal (lost)', nonTerminal.length, nonTerminal.length === 0);
    row(`SSE replays read (Last-Event-ID 0)`, replayed);
    row('  with more than one result event', multiResultReplay, multiResultReplay === 0);
    row('  with other faults (ids, order, status)', replayFaulty, replayFaulty === 0);
    row('live streams with faults', `${liveFaulty} (reconnects ${acceptedPlan.reduce((n, p) => n + p.liveReconnects, 0)})`, liveFaulty === 0);
    row('per-session order violations', orderViolations, orderViolations === 0);
    row('per-session overlaps [startedAt, finishedAt]', overlapViolations, overlapViolations === 0);
    row('ran twice / ran though reported not run', `${ranTwice.size} / ${ranElsewhere}`, ranTwice.size + ranElsewhere === 0);
    row('kernel record faults (silent state change)', kernelRecordFaults, kernelRecordFaults === 0);
    row('kernel losses seen by sessions', kernelLosses);
    row('  stateLost on the first run after a loss', `${kernelLosses - stateLostMissing} of ${kernelLosses}`, stateLostMissing === 0);
    row('  stateLost where nothing was lost', stateLostSpurious, stateLostSpurious === 0);
    row('lanes not empty at the end', laneLeft, laneLeft === 0);
    row('running-index entries left', runningLeft.length, runningLeft.length === 0);
    row('deadline index entries left', deadlinesLeft, deadlinesLeft ? 'warn' : undefined);
    row('strikes', f.summary());
    row('worker boots failed', f.bootErrors.length, f.bootErrors.length === 0);
    // In a container, the kill takes its Jupyter server and kernels with it.
    if (workerKills.length) row('killed workers\' Jupyter+kernels: last gone after', `max ${(orphanMax / 1000).toFixed(1)} s (alive at 60 s: ${orphanLeft})`, orphanLeft === 0);
    row('lane head wait p50 / p99 / max', `${pct(0.5)} / ${pct(0.99)} / ${headWaits.at(-1)?.ms ?? 0} ms`);
    row('  heads waiting > 10 s / dumped stuck > ' + stuckMs / 1000 + ' s', `${slowHeads.length} / ${stuck.length}`, stuck.length ? 'warn' : undefined);
    // Queue timeouts: those a full fleet caused say so (docs/capacity.md); the others came while a worker had room.
    const queueTimeouts = acceptedPlan.filter((p) => p.final?.status === 'timed_out' && p.final.phase === 'queue');
    const noCapacity = queueTimeouts.filter((p) => p.final?.result?.output.includes('no kernel capacity')).length;
    row('timed out in the queue: fleet full / a worker had room', `${noCapacity} / ${queueTimeouts.length - noCapacity}`, queueTimeouts.length === noCapacity);
    // Every execution ends by its deadline (accept + timeoutMs) and 10 s more.
    const late = acceptedPlan.filter((p) => p.final?.timings.finishedAt !== undefined && p.final.timings.finishedAt > p.final.timings.acceptedAt + CFG.timeoutMs + 10_000);
    for (const p of late.slice(0, 20)) note('late', `${p.executionId} ended ${p.final!.status} ${((p.final!.timings.finishedAt! - p.final!.timings.acceptedAt) / 1000).toFixed(1)} s after accept`);
    row('terminal later than deadline + 10 s', late.length, late.length === 0);
    const terminalCount = acceptedPlan.filter((p) => isTerminal(p.final?.status)).length;
    row('executions ended per second of the run', (terminalCount / (runWallMs / 1000)).toFixed(2));
    row('outcome_unknown that provably never ran', neverRan, neverRan ? 'warn' : undefined);
    row('error lines in api/worker logs', errorLines.length);
    row('wall time', `${wallS.toFixed(1)} s (run ${(runWallMs / 1000).toFixed(1)} s${timedOut ? ', TIME LIMIT' : ''})`, !timedOut);

    const first = (items: string[], n: number) => items.slice(0, n).map((l) => `  ${l.slice(0, 400)}`).join('\n');
    if (problems.length) console.log(`problems (${problems.length}, all in ${join(logDir, 'problems.txt')}):\n${first(problems, 40)}`);
    if (f.bootErrors.length) console.log(`worker boot errors:\n${first(f.bootErrors, 5)}`);
    if (errorLines.length) console.log(`log lines with errors (${errorLines.length}):\n${first(errorLines, 20)}`);
    console.log(`build ${build} (${apps ? `apps copied to ${apps.dir} for the run` : 'images kernelfleet-api:local and kernelfleet-worker:local'})`);
    console.log(`seed ${CFG.seed}; ${FLEET}: ${CFG.executions} executions, ${CFG.sessions} sessions, ${CFG.workers} workers, a strike every ${CFG.killEveryMs} ms, lease ${CFG.leaseMs} ms; logs in ${logDir}`);
    const widths = [50, 42, 4];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
    console.log(line(['check', 'value', '']));
    console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const r of rows) console.log(line(r));
    const ok = rows.every((r) => r[2] !== 'FAIL');
    console.log(`chaos ${ok ? 'PASSED' : 'FAILED'}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    finished = true;
    clearTimeout(hardTimer);
    stopAll.abort();
    await fleet?.stop();
    await redis?.stop();
    apps?.remove();
  }
}

runMain(main);
