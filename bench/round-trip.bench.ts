/**
 * `npm run bench`: the raw kernel round trip (@jupyterlab/services, no queue) — the floor —
 * and the same work end to end through api → Redis/BullMQ → worker → kernel → api, in one run:
 * answered by `?wait=true`, and through the client library (`executePython`: submit, then the
 * event stream, as an agent platform runs it);
 * then the fleet section (bench/fleet.bench.ts: new sessions with and without the kernel pool,
 * sleep-bound throughput on 1, 2 and 4 workers) on stacks of its own.
 * Prints a table, then `raw_p50_ms=… e2e_p50_ms=… overhead_p50_ms=… overhead_p99_ms=…`.
 * BENCH_FLEET=0 skips the fleet section.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JupyterServer, KernelClient, kernelEnvironment, type KernelHandle } from '@kernelfleet/kernel';
import { commandsPerExecution, WARM_EXECUTION_COMMANDS, type CommandCount } from '../test/support/redis-commands';
import { TestRedis } from '../test/support/redis-server';
import { Stack } from '../test/support/stack';
import { snapshotApps, timeEach, runMain } from './app-snapshot';
import { fleetRows, type Row } from './fleet.bench';

// The client as a program gets it: the built package (npm run bench builds it first).
const { KernelfleetClient } = require('../libs/client') as typeof import('@kernelfleet/client');

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 300);
const WARMUP = 30;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 8_000);
const CODE = '1+1';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: samples.length };
}

/** Executions per second with `parallel` independent loops for `ms` milliseconds. */
async function throughput(parallel: number, ms: number, once: (lane: number) => Promise<void>): Promise<number> {
  let done = 0;
  const until = Date.now() + ms;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: parallel }, async (_, lane) => {
      while (Date.now() < until) {
        await once(lane);
        done += 1;
      }
    }),
  );
  return (done * 1000) / (Date.now() - start);
}

const rawExecute = (kernel: KernelHandle) => async () => {
  const outcome = await kernel.execute(CODE, { onStream: () => undefined, onDisplay: () => undefined });
  if (outcome.status !== 'ok') throw new Error(`raw execution failed: ${JSON.stringify(outcome)}`);
};

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
  let stack: Stack | undefined = await Stack.start({ workerEnv: { WORKER_CONCURRENCY: '16' } });
  const rows: Row[] = [];
  try {
    // Round trip of a warm `1+1`, raw and end to end, interleaved in blocks to share the noise.
    const kernel = await client.startKernel({ timeoutMs: 30_000 });
    const raw = rawExecute(kernel);
    const e2e = async () => {
      const execution = await stack!.run('bench-rt', { code: CODE });
      if (execution.status !== 'completed') throw new Error(`e2e execution ${execution.status}`);
    };
    const kf = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const viaClient = async () => {
      const result = await kf.executePython(CODE, { sessionId: 'bench-rt' });
      if (result.status !== 'completed') throw new Error(`client execution ${result.status}`);
    };
    await timeEach(WARMUP, raw);
    await timeEach(WARMUP, e2e);
    await timeEach(WARMUP, viaClient);
    const rawSamples: number[] = [];
    const e2eSamples: number[] = [];
    const clientSamples: number[] = [];
    for (let block = 0; block < 10; block++) {
      rawSamples.push(...(await timeEach(ROUND_TRIPS / 10, raw)));
      e2eSamples.push(...(await timeEach(ROUND_TRIPS / 10, e2e)));
      clientSamples.push(...(await timeEach(ROUND_TRIPS / 10, viaClient)));
    }
    const r = summary(rawSamples);
    const e = summary(e2eSamples);
    const c = summary(clientSamples);
    rows.push(['warm 1+1 round trip, raw', `${r.p50.toFixed(2)} ms`, `${r.p99.toFixed(2)} ms`, `n=${r.n}`]);
    rows.push(['warm 1+1 round trip, end to end (wait=true)', `${e.p50.toFixed(2)} ms`, `${e.p99.toFixed(2)} ms`, `×${(e.p50 / r.p50).toFixed(2)} of raw`]);
    rows.push(['warm 1+1, client executePython (SSE)', `${c.p50.toFixed(2)} ms`, `${c.p99.toFixed(2)} ms`, `×${(c.p50 / r.p50).toFixed(2)} of raw`]);
    kernel.dispose();

    // Redis's side of the same warm execution, counted with MONITOR: only on a Redis of the
    // bench's own (MONITOR sees every client of a shared one).
    let cost: CommandCount | undefined;
    if (redis) {
      cost = await commandsPerExecution(redis.url, e2e, 50);
      const recorded = WARM_EXECUTION_COMMANDS;
      rows.push([
        'Redis commands per warm execution',
        `${cost.total} (${cost.inScripts} in scripts)`,
        `sent ${cost.sent}`,
        `${cost.scripts} script calls; guard ${recorded.total}/${recorded.sent}`,
      ]);
    }

    for (const parallel of [4, 16]) {
      const kernels = await Promise.all(Array.from({ length: parallel }, () => client.startKernel({ timeoutMs: 60_000 })));
      const rawRate = await throughput(parallel, THROUGHPUT_MS, (lane) => rawExecute(kernels[lane])());
      await Promise.all(kernels.map(async (k) => (await k.shutdown(), k.dispose())));
      await Promise.all(Array.from({ length: parallel }, (_, lane) => stack!.run(`bench-tp-${parallel}-${lane}`, { code: CODE })));
      const e2eRate = await throughput(parallel, THROUGHPUT_MS, async (lane) => {
        await stack!.run(`bench-tp-${parallel}-${lane}`, { code: CODE });
      });
      rows.push([`throughput, ${parallel} parallel sessions`, `raw ${rawRate.toFixed(0)}/s`, `e2e ${e2eRate.toFixed(0)}/s`, `×${(e2eRate / rawRate).toFixed(2)} of raw`]);
    }

    // The fleet section runs on stacks of its own: this one and the baseline server go first.
    let fleet: Row[] = [];
    if (process.env.BENCH_FLEET !== '0') {
      await stack.stop();
      stack = undefined;
      await server.stop();
      fleet = (await fleetRows(e.p50)).rows;
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
    if (cost) {
      const list = (counts: [string, number][]) => counts.map(([name, n]) => `${name} ${n}`).join(', ');
      console.log(`Redis commands per warm execution, by name: ${list(cost.byName)}`);
      console.log(`  sent, by connection: ${list(cost.sentBy)}`);
    }
    console.log(
      `raw_p50_ms=${r.p50.toFixed(2)} e2e_p50_ms=${e.p50.toFixed(2)} client_p50_ms=${c.p50.toFixed(2)} ` +
        `overhead_p50_ms=${(e.p50 - r.p50).toFixed(2)} overhead_p99_ms=${(e.p99 - r.p99).toFixed(2)}` +
        (cost ? ` redis_cmds_per_exec=${cost.total} redis_sent_per_exec=${cost.sent}` : ''),
    );
  } finally {
    await stack?.stop();
    await server.stop();
    await redis?.stop();
    apps?.remove();
  }
}

runMain(main);
