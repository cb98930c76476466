/**
 * `npm run bench:placement`: the throughput of `npm run bench`, raw kernels against the fleet,
 * with the machine's cores shared as the bench shares them and split the way a deployment
 * splits them (docs/benchmarks.md, *Throughput is a share of the cores*). On one machine the
 * load generator, api, Redis, worker, Jupyter servers and kernels take turns on the same cores,
 * so the fleet's own CPU is taken from the kernels'. Deployed, the kernels run on worker nodes
 * and the api and Redis elsewhere. Each placement pins every process (all its threads, with
 * `taskset`) before both loops run:
 *
 * - shared: every process on every core (what `npm run bench` measures);
 * - kernels apart, worker with them: the Jupyter servers, their kernels and the worker on the
 *   upper half of the cores, the api, Redis and this process (the load generator, and the raw
 *   loop's own `@jupyterlab/services` client) on the lower half;
 * - kernels apart, worker with the front: the Jupyter servers and kernels alone on the upper half.
 *
 * BENCH_PARALLEL (default 4,16,64) sessions run `1+1` back to back for BENCH_THROUGHPUT_MS each,
 * raw then through the client's `executePython`, twice per placement. Needs `taskset`
 * (util-linux) and at least two cores.
 */
import { execFileSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { JupyterServer, KernelClient, kernelEnvironment, type KernelHandle } from '@kernelfleet/kernel';
import { Stack } from '../test/support/stack';
import { inBatches, prepareBench, printTable, runMain, throughput } from './app-snapshot';
import { rawExecute, UNLIMITED_SUBMITS } from './costs.bench';
import { processes, STACK_PARTS, withDescendants } from './process-cpu';

// The client as a program gets it: the built package (npm run bench:placement builds it first).
const { KernelfleetClient } = require('../libs/client') as typeof import('@kernelfleet/client');

const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 4_000);
const PARALLEL = (process.env.BENCH_PARALLEL ?? '4,16,64').split(',').map(Number);
const ROUNDS = 2;
const CODE = '1+1';

/** Pins every thread of each process to `cpuList` (e.g. "0-1"); a process gone meanwhile is skipped. */
function pin(pids: number[], cpuList: string): void {
  for (const pid of pids) {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
    } catch {
      // ended meanwhile
    }
  }
}

interface Parts {
  kernels: number[];
  worker: number[];
  front: number[];
}

/** The processes of the run, read now (kernels started since are below a Jupyter server already counted). */
function partsOf(redisPort: string): Parts {
  const all = processes();
  const pids = (pattern: RegExp) => all.filter((p) => pattern.test(p.cmdline)).map((p) => p.pid);
  const worker = pids(STACK_PARTS.worker);
  return {
    kernels: withDescendants(pids(STACK_PARTS.jupyter)).filter((pid) => !worker.includes(pid)),
    worker,
    front: [...pids(STACK_PARTS.api), ...pids(new RegExp(`redis-server .*:${redisPort}\\b`)), process.pid],
  };
}

async function main(): Promise<void> {
  const count = cpus().length;
  if (count < 2) throw new Error('bench:placement needs at least two cores');
  const lower = `0-${Math.floor(count / 2) - 1}`;
  const upper = `${Math.floor(count / 2)}-${count - 1}`;
  const every = `0-${count - 1}`;
  const { python, cleanUp } = await prepareBench();
  const server = await JupyterServer.start({ python, rootDir: mkdtempSync(join(tmpdir(), 'kf-placement-')), env: kernelEnvironment(process.env) });
  const most = Math.max(...PARALLEL);
  const stack = await Stack.start({ apiEnv: UNLIMITED_SUBMITS, workerEnv: { WORKER_CONCURRENCY: String(Math.max(16, most)), MAX_KERNELS: String(most * 2) } });
  const placements: Record<string, (parts: Parts) => void> = {
    shared: (p) => pin([...p.kernels, ...p.worker, ...p.front], every),
    'kernels apart, worker with them': (p) => {
      pin([...p.kernels, ...p.worker], upper);
      pin(p.front, lower);
    },
    'kernels apart, worker with the front': (p) => {
      pin(p.kernels, upper);
      pin([...p.worker, ...p.front], lower);
    },
  };
  const rows: string[][] = [];
  try {
    const client = new KernelClient({ baseUrl: server.url, token: server.token });
    const kf = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const redisPort = new URL(process.env.KF_TEST_REDIS_URL!).port;
    for (const parallel of PARALLEL) {
      const kernels: KernelHandle[] = await inBatches(parallel, 4, () => client.startKernel({ timeoutMs: 60_000 }));
      await inBatches(parallel, 4, (lane) => kf.executePython(CODE, { sessionId: `placement-${parallel}-${lane}` }));
      const raw = (lane: number) => rawExecute(kernels[lane], CODE)();
      const fleet = (lane: number) =>
        kf.executePython(CODE, { sessionId: `placement-${parallel}-${lane}` }).then((r) => {
          if (r.status !== 'completed') throw new Error(`fleet execution ${r.status}`);
        });
      const parts = partsOf(redisPort);
      for (let round = 1; round <= ROUNDS; round++) {
        for (const [name, place] of Object.entries(placements)) {
          place(parts);
          await throughput(parallel, 500, raw); // warm-up after the move
          const r = (await throughput(parallel, THROUGHPUT_MS, raw)).rate;
          await throughput(parallel, 500, fleet);
          const f = (await throughput(parallel, THROUGHPUT_MS, fleet)).rate;
          rows.push([`${parallel} sessions, ${name}`, `${r.toFixed(0)}/s`, `${f.toFixed(0)}/s`, `×${(f / r).toFixed(2)} (goal ≥0.9)`]);
        }
      }
      pin([...parts.kernels, ...parts.worker, ...parts.front], every);
      await Promise.all(kernels.map(async (k) => (await k.shutdown(), k.dispose())));
    }
  } finally {
    pin([process.pid], every);
    await stack.stop();
    await server.stop();
    await cleanUp();
  }
  console.log(`\n${count} cores; kernels apart: the upper half (${upper}), the front the lower (${lower})`);
  printTable([50, 10, 10, 18], ['1+1 back to back, placement', 'raw', 'fleet', 'fleet of raw'], rows);
}

runMain(main);
