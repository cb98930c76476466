/**
 * `npm run bench:capacity`: how long a new session waits for its first result at a full fleet
 * (docs/capacity.md), beside the same on a fleet with room and the floors, all in one run:
 *
 * - raw: `1+1` on a kernel of our own through @jupyterlab/services, no queue (the floor);
 * - warm: `1+1` end to end on a session that has its kernel;
 * - new, room: a new session's first `1+1` on a worker with free slots (a pool kernel);
 * - new, full: the same on a worker whose MAX_KERNELS (BENCH_CAPACITY_KERNELS, 4) are all held by
 *   idle sessions past KERNEL_EVICT_MIN_IDLE_MS (1 s here): the worker evicts the least recently
 *   used one for it. Each sample is a fifth session arriving at four idle ones.
 *
 * p50 / p90 / max over BENCH_CAPACITY_SAMPLES (10) each; the table gives the ratio to warm.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Execution } from '@kernelfleet/contracts';
import { JupyterServer, KernelClient, kernelEnvironment } from '@kernelfleet/kernel';
import { Stack } from '../test/support/stack';
import { prepareBench, printTable, runMain, timeEach } from './app-snapshot';

const SAMPLES = Number(process.env.BENCH_CAPACITY_SAMPLES ?? 10);
const KERNELS = Number(process.env.BENCH_CAPACITY_KERNELS ?? 4);
const MIN_IDLE_MS = 1_000;
/** Pause between new sessions, so the warm pool has refilled (both new-session rows). */
const SETTLE_MS = 2_500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

async function timedRun(stack: Stack, session: string): Promise<{ ms: number; execution: Execution }> {
  const start = process.hrtime.bigint();
  const execution = await stack.run(session, { code: '1+1', timeoutMs: 60_000 });
  if (execution.status !== 'completed') throw new Error(`${session}: ${execution.status} ${execution.result?.output}`);
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, execution };
}

async function main(): Promise<void> {
  const { python, cleanUp } = await prepareBench();
  const rootDir = mkdtempSync(join(tmpdir(), 'kf-bench-capacity-'));
  const server = await JupyterServer.start({ python, rootDir, env: kernelEnvironment(process.env) });
  const client = new KernelClient({ baseUrl: server.url, token: server.token });
  let stack: Stack | undefined;
  try {
    const kernel = await client.startKernel({ timeoutMs: 30_000 });
    const raw = () => kernel.execute('1+1', { onStream: () => undefined, onDisplay: () => undefined }).then(() => undefined);
    await timeEach(10, raw);
    const rawMs = (await timeEach(SAMPLES * 5, raw)).sort((a, b) => a - b);

    stack = await Stack.start({ workerEnv: { MAX_KERNELS: String(KERNELS), KERNEL_EVICT_MIN_IDLE_MS: String(MIN_IDLE_MS) } });
    const s = stack;
    await timedRun(s, 'warm');
    const warm: number[] = [];
    for (let i = 0; i < SAMPLES * 5; i++) warm.push((await timedRun(s, 'warm')).ms);
    await s.request('DELETE', '/v1/sessions/warm');

    // A worker with room: each new session is deleted after its sample.
    const room: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      await sleep(SETTLE_MS);
      room.push((await timedRun(s, `room-${i}`)).ms);
      await s.request('DELETE', `/v1/sessions/room-${i}`);
    }

    // A full worker: KERNELS idle sessions, then one more each round (the oldest is evicted).
    for (let i = 0; i < KERNELS; i++) await timedRun(s, `idle-${i}`);
    const full: number[] = [];
    let evicted = 0;
    for (let i = 0; i < SAMPLES; i++) {
      await sleep(Math.max(SETTLE_MS, MIN_IDLE_MS + 500));
      const { ms } = await timedRun(s, `full-${i}`);
      full.push(ms);
      const oldest = i < KERNELS ? `idle-${i}` : `full-${i - KERNELS}`;
      if ((await s.request('GET', `/v1/sessions/${oldest}`)).json.kernel?.state === 'evicted') evicted += 1;
    }

    const warmP50 = pct([...warm].sort((a, b) => a - b), 0.5);
    const row = (name: string, samples: number[]) => {
      const sorted = [...samples].sort((a, b) => a - b);
      return [name, `${pct(sorted, 0.5).toFixed(1)} ms`, `${pct(sorted, 0.9).toFixed(1)} ms`, `${sorted.at(-1)!.toFixed(1)} ms`, `×${(pct(sorted, 0.5) / warmP50).toFixed(2)}`];
    };
    printTable([34, 10, 10, 10, 8], ['first result of', 'p50', 'p90', 'max', '/ warm'], [
      row('raw kernel round trip (floor)', rawMs),
      row('warm session, end to end', warm),
      row('new session, worker with room', room),
      row(`new session, full worker (${KERNELS} idle)`, full),
    ]);
    console.log(`evictions seen: ${evicted} of ${SAMPLES} (the least recently used session each time); samples ${SAMPLES}`);
    console.log(`capacity_full_new_p50_ms=${pct([...full].sort((a, b) => a - b), 0.5).toFixed(1)} capacity_room_new_p50_ms=${pct([...room].sort((a, b) => a - b), 0.5).toFixed(1)} warm_p50_ms=${warmP50.toFixed(1)}`);
    await kernel.shutdown();
    kernel.dispose();
  } finally {
    await stack?.stop();
    await server.stop();
    rmSync(rootDir, { recursive: true, force: true });
    await cleanUp();
  }
}

runMain(main);
