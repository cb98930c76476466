/**
 * `npm run bench`: what the fleet costs over a bare kernel, every figure beside its baseline
 * from the same run (docs/benchmarks.md):
 *
 * - the warm `1+1` round trip, raw (@jupyterlab/services, no queue: the floor) and end to end
 *   through the client library (`executePython`: one POST answered with the event stream, on
 *   Node's http module, the client's default on Node); beside them the same client given the
 *   global fetch, a hand-written fetch client's `?wait=true`, and that client's round trip to a
 *   route that does no work (`GET /health/live`): the part any service behind HTTP pays;
 * - Redis commands per warm execution (MONITOR on the bench's own Redis);
 * - time to the first output byte at an SSE client vs the raw kernel's first IOPub stream message;
 * - throughput at 4, 16 and 64 busy sessions (executePython back to back) vs as many raw kernels,
 *   with the CPU the api, the worker and Redis spend per execution (BENCH_PARALLEL to choose),
 *   and the CPU every part on the machine spends per execution in each loop (load generator,
 *   api, worker, Redis, Jupyter server, kernels): with every core busy, raw's over the fleet's
 *   is the ratio the cores allow (`cpu_ratio_16`);
 * - submissions one api accepts per second (bench/costs.bench.ts);
 * - then, on stacks of their own, the fleet section (bench/fleet.bench.ts: new sessions with and
 *   without the kernel pool, sleep-bound throughput on 1, 2 and 4 workers; BENCH_FLEET=0 skips
 *   it) and kernel density (bench/density.bench.ts: 200 idle sessions on one worker;
 *   BENCH_DENSITY=0 skips it).
 *
 * Prints a table, then one machine-readable line: `raw_p50_ms=… e2e_p50_ms=… overhead_p50_ms=…
 * overhead_p99_ms=… throughput_ratio_16=… redis_cmds_per_exec=… accepts_per_s=…` and more.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JupyterServer, KernelClient, kernelEnvironment } from '@kernelfleet/kernel';
import { commandsPerExecution, WARM_EXECUTION_COMMANDS, type CommandCount } from '../test/support/redis-commands';
import { TestRedis } from '../test/support/redis-server';
import { Stack } from '../test/support/stack';
import { inBatches, snapshotApps, timeEach, runMain } from './app-snapshot';
import { acceptsPerSecond, rawExecute, rawFirstOutput, sseFirstOutput, UNLIMITED_SUBMITS, withWorkersPaused } from './costs.bench';
import { densityRows } from './density.bench';
import { fleetRows, type Row } from './fleet.bench';
import { throughputWithCpu, totalOf, type CpuPerExecution } from './process-cpu';

// The client as a program gets it: the built package (npm run bench builds it first).
const { KernelfleetClient } = require('../libs/client') as typeof import('@kernelfleet/client');

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 300);
const WARMUP = 30;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 8_000);
const PARALLEL = (process.env.BENCH_PARALLEL ?? '4,16,64').split(',').map(Number);
const ACCEPTS_MS = Number(process.env.BENCH_ACCEPTS_MS ?? 5_000);
const CODE = '1+1';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: samples.length };
}

async function main(): Promise<void> {
  // @jupyterlab/services narrates every websocket on console.debug (as the worker, keep it quiet).
  if (!process.env.BENCH_DEBUG) console.debug = () => undefined;
  // The api and workers run a copy of dist/ taken now, whatever is rebuilt during the run.
  const apps = process.env.KF_APP_ROOT ? undefined : snapshotApps();
  const redis = process.env.KF_TEST_REDIS_URL ? undefined : await TestRedis.start();
  process.env.KF_TEST_REDIS_URL ??= redis!.url;
  const python = process.env.KERNELFLEET_PYTHON ?? join(__dirname, '..', '.venv', 'bin', 'python');
  const rootDir = mkdtempSync(join(tmpdir(), 'kf-bench-'));
  const server = await JupyterServer.start({ python, rootDir, env: kernelEnvironment(process.env) });
  const client = new KernelClient({ baseUrl: server.url, token: server.token });
  // Room for every session of the throughput rows on the one worker, and no quota in the way of
  // the accept rate.
  let stack: Stack | undefined = await Stack.start({
    apiEnv: UNLIMITED_SUBMITS,
    workerEnv: { WORKER_CONCURRENCY: String(Math.max(16, ...PARALLEL)), MAX_KERNELS: String(Math.max(...PARALLEL) * 2) },
  });
  const rows: Row[] = [];
  try {
    // Round trip of a warm `1+1`, raw and end to end, interleaved in blocks to share the noise.
    // End to end is the client library's executePython, as an agent platform calls it (Node's
    // http module underneath, its default on Node); beside it, the same with the global fetch,
    // a hand-written fetch client's `wait=true`, and that client's HTTP alone.
    const kernel = await client.startKernel({ timeoutMs: 30_000 });
    const raw = rawExecute(kernel, CODE);
    const kf = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const kfFetch = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey, fetch: globalThis.fetch });
    const viaClient = (c: typeof kf) => async () => {
      const result = await c.executePython(CODE, { sessionId: 'bench-rt' });
      if (result.status !== 'completed') throw new Error(`client execution ${result.status}`);
    };
    const waitWithFetch = async () => {
      const execution = await stack!.run('bench-rt', { code: CODE });
      if (execution.status !== 'completed') throw new Error(`wait=true execution ${execution.status}`);
    };
    const httpOnly = async () => {
      const answer = await stack!.request('GET', '/health/live');
      if (answer.status !== 200) throw new Error(`GET /health/live answered ${answer.status}`);
    };
    const timed = { raw, client: viaClient(kf), clientFetch: viaClient(kfFetch), waitFetch: waitWithFetch, httpOnly };
    const samples = Object.fromEntries(Object.keys(timed).map((name) => [name, [] as number[]])) as Record<keyof typeof timed, number[]>;
    for (const run of Object.values(timed)) await timeEach(WARMUP, run);
    for (let block = 0; block < 10; block++) {
      for (const [name, run] of Object.entries(timed)) samples[name as keyof typeof timed].push(...(await timeEach(ROUND_TRIPS / 10, run)));
    }
    const r = summary(samples.raw);
    const e = summary(samples.client);
    const f = summary(samples.clientFetch);
    const w = summary(samples.waitFetch);
    const h = summary(samples.httpOnly);
    const overhead = (s: { p50: number }) => `overhead ${(s.p50 - r.p50).toFixed(2)} ms p50`;
    rows.push(['warm 1+1 round trip, raw', `${r.p50.toFixed(2)} ms`, `${r.p99.toFixed(2)} ms`, `n=${r.n}`]);
    rows.push(['warm 1+1 end to end, client executePython', `${e.p50.toFixed(2)} ms`, `${e.p99.toFixed(2)} ms`, `${overhead(e)} (goal ≤3)`]);
    rows.push(['the same, the client given the global fetch', `${f.p50.toFixed(2)} ms`, `${f.p99.toFixed(2)} ms`, overhead(f)]);
    rows.push(['wait=true through fetch, hand-written', `${w.p50.toFixed(2)} ms`, `${w.p99.toFixed(2)} ms`, overhead(w)]);
    rows.push(['fetch alone: GET /health/live', `${h.p50.toFixed(2)} ms`, `${h.p99.toFixed(2)} ms`, `wait=true less this: ${(w.p50 - r.p50 - h.p50).toFixed(2)} ms p50`]);
    kernel.dispose();

    // Redis's side of the same warm execution, counted with MONITOR: only on a Redis of the
    // bench's own (MONITOR sees every client of a shared one).
    let cost: CommandCount | undefined;
    if (redis) {
      cost = await commandsPerExecution(redis.url, waitWithFetch, 50);
      const recorded = WARM_EXECUTION_COMMANDS;
      rows.push([
        'Redis commands per warm execution',
        `${cost.total} (${cost.inScripts} in scripts)`,
        `sent ${cost.sent}`,
        `${cost.scripts} script calls; guard ${recorded.total}/${recorded.sent}`,
      ]);
    }

    // Time to the first output: raw IOPub stream message vs first chunk at an SSE client.
    const firstKernel = await client.startKernel({ timeoutMs: 30_000 });
    const viaSse = async (code: string, onChunk: () => void) =>
      (await kf.executePython(code, { sessionId: 'bench-first', onChunk })).status;
    await rawFirstOutput(firstKernel, WARMUP);
    await sseFirstOutput(viaSse, WARMUP);
    const rawFirst: number[] = [];
    const sseFirst: number[] = [];
    for (let block = 0; block < 5; block++) {
      rawFirst.push(...(await rawFirstOutput(firstKernel, 20)));
      sseFirst.push(...(await sseFirstOutput(viaSse, 20)));
    }
    firstKernel.dispose();
    const rf = summary(rawFirst);
    const sf = summary(sseFirst);
    rows.push(['first output byte, raw IOPub stream message', `${rf.p50.toFixed(2)} ms`, `${rf.p99.toFixed(2)} ms`, `n=${rf.n}`]);
    rows.push(['first output byte at an SSE client', `${sf.p50.toFixed(2)} ms`, `${sf.p99.toFixed(2)} ms`, `raw +${(sf.p50 - rf.p50).toFixed(2)} ms (goal ≤ +3)`]);

    // Throughput, with the CPU the fleet's own parts spend per execution meanwhile.
    const ratios = new Map<number, number>();
    const ceilings = new Map<number, number>();
    for (const parallel of PARALLEL) {
      const kernels = await inBatches(parallel, 4, () => client.startKernel({ timeoutMs: 60_000 }));
      const redisUrl = process.env.KF_TEST_REDIS_URL!;
      const raw = await throughputWithCpu(redisUrl, parallel, THROUGHPUT_MS, (lane) => rawExecute(kernels[lane], CODE)());
      await Promise.all(kernels.map(async (k) => (await k.shutdown(), k.dispose())));
      await inBatches(parallel, 4, async (lane) => {
        const first = await stack!.run(`bench-tp-${parallel}-${lane}`, { code: CODE });
        if (first.status !== 'completed') throw new Error(`first execution of a throughput session ${first.status}`);
      });
      const e2e = await throughputWithCpu(redisUrl, parallel, THROUGHPUT_MS, async (lane) => {
        const result = await kf.executePython(CODE, { sessionId: `bench-tp-${parallel}-${lane}` });
        if (result.status !== 'completed') throw new Error(`throughput execution ${result.status}`);
      });
      const { api, worker, redis: redisCpu } = e2e.cpu;
      ratios.set(parallel, e2e.rate / raw.rate);
      rows.push([
        `throughput, ${parallel} parallel sessions`,
        `raw ${raw.rate.toFixed(0)}/s`,
        `e2e ${e2e.rate.toFixed(0)}/s`,
        `×${(e2e.rate / raw.rate).toFixed(2)} of raw (goal ≥0.9); CPU per execution: api ${api.toFixed(2)} + worker ${worker.toFixed(2)} + Redis ${redisCpu.toFixed(2)} = ${(api + worker + redisCpu).toFixed(2)} ms`,
      ]);
      // Both loops keep every core busy, so each rate is about the cores over the CPU one
      // execution costs all the parts on the machine: their quotient is what the cores allow.
      const [rawAll, e2eAll] = [totalOf(raw.cpu), totalOf(e2e.cpu)];
      ceilings.set(parallel, rawAll / e2eAll);
      const kernelSide = (cpu: CpuPerExecution) => (cpu.jupyter + cpu.kernels).toFixed(2);
      rows.push([
        '  the same, CPU per execution, every part',
        `raw ${rawAll.toFixed(2)} ms`,
        `e2e ${e2eAll.toFixed(2)} ms`,
        `×${(rawAll / e2eAll).toFixed(2)} the cores allow; load ${raw.cpu.load.toFixed(2)} / ${e2e.cpu.load.toFixed(2)}, Jupyter + kernels ${kernelSide(raw.cpu)} / ${kernelSide(e2e.cpu)} ms`,
      ]);
    }

    // Submissions one api accepts per second, the worker running what it accepted.
    // The sessions of the last throughput row, which have their kernels.
    const busiest = PARALLEL[PARALLEL.length - 1];
    const sessions = Array.from({ length: busiest }, (_, lane) => `bench-tp-${busiest}-${lane}`);
    const accepts = await acceptsPerSecond(stack, { ms: ACCEPTS_MS, connections: 64, sessions });
    rows.push(['accepts per second, one api (202s)', `${accepts.toFixed(0)}/s`, '', `64 connections, ${busiest} sessions (goal ≥5,000/s)`]);
    // The same with the worker, its Jupyter server and kernels stopped: the api's own ceiling
    // on this machine, without the executions competing for its cores.
    const acceptsAlone = await withWorkersPaused(stack, () => acceptsPerSecond(stack!, { ms: ACCEPTS_MS, connections: 64, sessions }));
    rows.push(['the same, the worker and its kernels paused', `${acceptsAlone.toFixed(0)}/s`, '', 'the cores left to the api, Redis and the load']);

    // The fleet section and the density run on stacks of their own: this one and the baseline
    // server go first.
    let fleet: Row[] = [];
    let density: Awaited<ReturnType<typeof densityRows>> | undefined;
    const runFleet = process.env.BENCH_FLEET !== '0';
    const runDensity = process.env.BENCH_DENSITY !== '0';
    if (runFleet || runDensity) {
      await stack.stop();
      stack = undefined;
      await server.stop();
      if (runFleet) fleet = (await fleetRows()).rows;
      if (runDensity) density = await densityRows();
    }

    const widths = [46, 16, 16, 16];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
    console.log(line(['measure', 'p50 / raw', 'p99 / e2e', 'note']));
    console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const row of rows) console.log(line(row));
    if (fleet.length) {
      console.log(line(['fleet (own stacks; WORKER_CONCURRENCY=4)', 'p50 / rate', 'p90 / ideal', 'note']));
      console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
      for (const row of fleet) console.log(line(row));
    }
    if (density) {
      console.log(line(['density (own stack; 1 worker)', 'value', 'at load', 'note']));
      console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
      for (const row of density.rows) console.log(line(row));
    }
    if (cost) {
      const list = (counts: [string, number][]) => counts.map(([name, n]) => `${name} ${n}`).join(', ');
      console.log(`Redis commands per warm execution, by name: ${list(cost.byName)}`);
      console.log(`  sent, by connection: ${list(cost.sentBy)}`);
    }
    console.log(
      `raw_p50_ms=${r.p50.toFixed(2)} e2e_p50_ms=${e.p50.toFixed(2)} ` +
        `overhead_p50_ms=${(e.p50 - r.p50).toFixed(2)} overhead_p99_ms=${(e.p99 - r.p99).toFixed(2)}` +
        ` overhead_client_fetch_p50_ms=${(f.p50 - r.p50).toFixed(2)} overhead_wait_fetch_p50_ms=${(w.p50 - r.p50).toFixed(2)} http_p50_ms=${h.p50.toFixed(2)}` +
        ` first_output_overhead_ms=${(sf.p50 - rf.p50).toFixed(2)}` +
        (ratios.has(16) ? ` throughput_ratio_16=${ratios.get(16)!.toFixed(2)} cpu_ratio_16=${ceilings.get(16)!.toFixed(2)}` : '') +
        (cost ? ` redis_cmds_per_exec=${cost.total} redis_sent_per_exec=${cost.sent}` : '') +
        ` accepts_per_s=${accepts.toFixed(0)} accepts_workers_paused_per_s=${acceptsAlone.toFixed(0)}` +
        (density ? ` worker_mib_per_kernel=${density.workerMiBPerKernel.toFixed(2)} jupyter_mib_per_kernel=${density.jupyterMiBPerKernel.toFixed(2)}` : ''),
    );
  } finally {
    await stack?.stop();
    await server.stop();
    await redis?.stop();
    apps?.remove();
  }
}

runMain(main);
