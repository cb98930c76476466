/**
 * `npm run bench:fairness`: tenant B's latency for a warm `1+1` while tenant A floods the
 * fleet, with fair share (the default) and with plain FIFO dispatch (FAIR_DISPATCH=false), next
 * to B's latency with no load and the raw kernel round trip (@jupyterlab/services, no queue)
 * measured in the same run. Each mode runs on a stack of its own: one worker,
 * WORKER_CONCURRENCY=4; A keeps BENCH_FAIR_LOOPS (3) executions of `time.sleep(0.3)` pending in
 * each of its BENCH_FAIR_SESSIONS (40) warm sessions for as long as B measures.
 * Prints a table (medians and ratios), then `fair_p50_ms=… fifo_p50_ms=… idle_p50_ms=… raw_p50_ms=…`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JupyterServer, KernelClient, kernelEnvironment } from '@kernelfleet/kernel';
import { OTHER_TENANT, Stack } from '../test/support/stack';
import { prepareBench, printTable, timeEach, runMain } from './app-snapshot';

const SESSIONS = Number(process.env.BENCH_FAIR_SESSIONS ?? 40);
const LOOPS = Number(process.env.BENCH_FAIR_LOOPS ?? 3);
const IDLE_SAMPLES = Number(process.env.BENCH_FAIR_IDLE_SAMPLES ?? 50);
const LOAD_SAMPLES = Number(process.env.BENCH_FAIR_LOAD_SAMPLES ?? 15);
const RAW_SAMPLES = 100;
const FLOOD_CODE = 'time.sleep(0.3)';

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)];
const ms = (n: number) => `${n.toFixed(n < 100 ? 2 : 0)} ms`;

async function rawRoundTrip(): Promise<number> {
  const python = process.env.KERNELFLEET_PYTHON ?? join(__dirname, '..', '.venv', 'bin', 'python');
  const server = await JupyterServer.start({ python, rootDir: mkdtempSync(join(tmpdir(), 'kf-bench-')), env: kernelEnvironment(process.env) });
  try {
    const kernel = await new KernelClient({ baseUrl: server.url, token: server.token }).startKernel({ timeoutMs: 30_000 });
    const once = async () => {
      const outcome = await kernel.execute('1+1', { onStream: () => undefined, onDisplay: () => undefined });
      if (outcome.status !== 'ok') throw new Error(`raw execution failed: ${JSON.stringify(outcome)}`);
    };
    await timeEach(20, once);
    const samples = await timeEach(RAW_SAMPLES, once);
    await kernel.shutdown();
    kernel.dispose();
    return median(samples);
  } finally {
    await server.stop();
  }
}

/** B's warm `1+1` medians on a fresh stack: no load, then under A's flood. */
async function tenantB(fair: boolean): Promise<{ idle: number; loaded: number; aDone: number }> {
  const stack = await Stack.start({
    // The worker dispatches next heads too: both run the same mode.
    workerEnv: { WORKER_CONCURRENCY: '4', MAX_KERNELS: String(SESSIONS + 8), FAIR_DISPATCH: String(fair) },
    apiEnv: { FAIR_DISPATCH: String(fair) },
  });
  try {
    const b = async () => {
      const e = await stack.run('b-warm', { code: '1+1' }, { key: stack.otherKey });
      if (e.status !== 'completed') throw new Error(`B: ${e.status}`);
    };
    const aSessions = Array.from({ length: SESSIONS }, (_, i) => `flood-${i}`);
    for (let i = 0; i < aSessions.length; i += 8) {
      await Promise.all(aSessions.slice(i, i + 8).map((s) => stack.run(s, { code: 'import time', timeoutMs: 60_000 })));
    }
    await timeEach(10, b);
    const idle = median(await timeEach(IDLE_SAMPLES, b));

    let flooding = true;
    let aDone = 0;
    const loops = aSessions.flatMap((s) =>
      Array.from({ length: LOOPS }, async () => {
        while (flooding) {
          await stack.run(s, { code: FLOOD_CODE, timeoutMs: 600_000 });
          aDone += 1;
        }
      }),
    );
    // Let the flood build its backlog before B measures.
    await new Promise((r) => setTimeout(r, 2_000));
    const loaded = median(await timeEach(LOAD_SAMPLES, b));
    flooding = false;
    await Promise.all(loops);
    return { idle, loaded, aDone };
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  const { cleanUp } = await prepareBench();
  try {
    const raw = await rawRoundTrip();
    const fair = await tenantB(true);
    const fifo = await tenantB(false);

    printTable([52, 14, 14, 14], [`tenant ${OTHER_TENANT} (B) warm 1+1, median`, 'latency', '× no load', '× raw'], [
      ['raw kernel round trip (floor)', ms(raw), '', '×1.00'],
      ['B, no load (fair-share stack)', ms(fair.idle), '×1.00', `×${(fair.idle / raw).toFixed(2)}`],
      [`B under A's flood, fair share (A ran ${fair.aDone})`, ms(fair.loaded), `×${(fair.loaded / fair.idle).toFixed(2)}`, `×${(fair.loaded / raw).toFixed(2)}`],
      ['B, no load (FIFO stack)', ms(fifo.idle), '×1.00', `×${(fifo.idle / raw).toFixed(2)}`],
      [`B under A's flood, FIFO (A ran ${fifo.aDone})`, ms(fifo.loaded), `×${(fifo.loaded / fifo.idle).toFixed(2)}`, `×${(fifo.loaded / raw).toFixed(2)}`],
    ]);
    console.log(
      `A: ${SESSIONS} sessions × ${LOOPS} pending '${FLOOD_CODE}'; B: ${LOAD_SAMPLES} samples under load, ${IDLE_SAMPLES} idle; ` +
        `one worker, WORKER_CONCURRENCY=4`,
    );
    console.log(`fair_p50_ms=${fair.loaded.toFixed(2)} fifo_p50_ms=${fifo.loaded.toFixed(2)} idle_p50_ms=${fair.idle.toFixed(2)} raw_p50_ms=${raw.toFixed(2)}`);
  } finally {
    await cleanUp();
  }
}

runMain(main);
