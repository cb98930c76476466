/**
 * Kernel density, run by `npm run bench` after the fleet section (or alone:
 * `node -r ts-node/register/transpile-only -r tsconfig-paths/register bench/density.bench.ts`):
 * one worker holds BENCH_DENSITY_SESSIONS (200) idle sessions. Measured as the sessions arrive
 * (their first `1+1`, a few at a time): the resident memory of the worker and of its Jupyter
 * server, from /proc, per session kernel held (goal: at most 2 MiB each beyond the kernel's own),
 * the kernels' own for comparison, and a warm `1+1` of one session before and at full load.
 */
import { Stack } from '../test/support/stack';
import { inBatches, prepareBench, printTable, runMain, timeEach } from './app-snapshot';
import { cpuSecondsOf, processes, STACK_PARTS } from './process-cpu';

type Row = [string, string, string, string];

const SESSIONS = Number(process.env.BENCH_DENSITY_SESSIONS ?? 200);
/** New sessions started at once (see inBatches). */
const AT_ONCE = 4;
const MiB = 1024 * 1024;
const IDLE_MS = 5_000;

/** Resident memory of the worker, of its Jupyter server, and of everything below the server (kernels). */
function memoryOf(workerPid: number): { worker: number; jupyter: number; kernels: number; kernelCount: number } {
  const all = processes();
  const children = (pid: number) => all.filter((p) => p.ppid === pid);
  const worker = all.find((p) => p.pid === workerPid);
  const jupyter = children(workerPid).find((p) => STACK_PARTS.jupyter.test(p.cmdline));
  if (!worker || !jupyter) throw new Error('worker or its Jupyter server not found in /proc');
  // Each kernel is a child of the server (in the sandbox, with processes of its own below it).
  const kernelCount = children(jupyter.pid).length;
  let kernels = 0;
  for (let below = children(jupyter.pid); below.length; below = below.flatMap((p) => children(p.pid))) {
    for (const p of below) kernels += p.rssBytes;
  }
  return { worker: worker.rssBytes, jupyter: jupyter.rssBytes, kernels, kernelCount };
}

async function warmP50(stack: Stack): Promise<number> {
  const once = async () => {
    const execution = await stack.run('density-probe', { code: '1+1' });
    if (execution.status !== 'completed') throw new Error(`probe ${execution.status}`);
  };
  await timeEach(10, once);
  return [...(await timeEach(60, once))].sort((a, b) => a - b)[30];
}

export async function densityRows(): Promise<{ rows: Row[]; workerMiBPerKernel: number; jupyterMiBPerKernel: number }> {
  const stack = await Stack.start({
    workers: 1,
    workerEnv: {
      MAX_KERNELS: String(SESSIONS + 10),
      KERNEL_POOL_SIZE: '0',
      WORKER_CONCURRENCY: String(AT_ONCE * 2),
      KERNEL_START_MAX_MS: '60000',
      KERNEL_EVICT_MIN_IDLE_MS: '3600000',
      ...(process.env.BENCH_DENSITY_LOG ? { LOG_LEVEL: process.env.BENCH_DENSITY_LOG } : {}),
    },
  });
  try {
    const workerPid = stack.workers[0].child.pid!;
    const warmBefore = await warmP50(stack);
    const before = memoryOf(workerPid);
    await inBatches(SESSIONS, AT_ONCE, async (i) => {
      const execution = await stack.run(`density-${i}`, { code: '1+1', timeoutMs: 120_000 });
      if (execution.status !== 'completed') throw new Error(`density-${i}: ${execution.status} ${execution.result?.output}`);
    });
    // What holding them costs while nothing runs: CPU of each part over IDLE_MS.
    await new Promise((r) => setTimeout(r, 2_000));
    const idleBefore = cpuSecondsOf(STACK_PARTS);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleAfter = cpuSecondsOf(STACK_PARTS);
    const busy = (part: keyof typeof STACK_PARTS) => `${(((idleAfter[part] - idleBefore[part]) * 100_000) / IDLE_MS).toFixed(1)} %`;
    const warmAtLoad = await warmP50(stack);
    const after = memoryOf(workerPid);
    const held = after.kernelCount - before.kernelCount;
    const per = (bytes: number) => bytes / held / MiB;
    const workerPer = per(after.worker - before.worker);
    const jupyterPer = per(after.jupyter - before.jupyter);
    const rows: Row[] = [
      [`density: idle sessions held by one worker`, `${held}`, `kernels ${after.kernelCount}`, `RSS worker ${(after.worker / MiB).toFixed(0)} MiB, Jupyter ${(after.jupyter / MiB).toFixed(0)} MiB`],
      ['density: worker memory per kernel', `${workerPer.toFixed(2)} MiB`, '', 'beyond the kernel (goal ≤2 MiB)'],
      ['density: Jupyter server memory per kernel', `${jupyterPer.toFixed(2)} MiB`, '', 'beyond the kernel (goal ≤2 MiB)'],
      ['density: a kernel\'s own memory', `${per(after.kernels - before.kernels).toFixed(1)} MiB`, '', 'kernel and sandbox processes'],
      ['density: CPU while idle, at load', `worker ${busy('worker')}`, `Jupyter ${busy('jupyter')}`, `kernels ${busy('kernels')} (of one core)`],
      [`density: warm 1+1, 1 vs ${held + 1} sessions`, `${warmBefore.toFixed(2)} ms`, `${warmAtLoad.toFixed(2)} ms`, `×${(warmAtLoad / warmBefore).toFixed(2)}`],
    ];
    return { rows, workerMiBPerKernel: workerPer, jupyterMiBPerKernel: jupyterPer };
  } catch (error) {
    // What the worker (and, at LOG_LEVEL=debug, its Jupyter server) said last.
    console.error(stack.workers[0]?.output.split('\n').slice(-60).join('\n'));
    throw error;
  } finally {
    await stack.stop();
  }
}

if (require.main === module) {
  runMain(async () => {
    const { cleanUp } = await prepareBench();
    try {
      const { rows, workerMiBPerKernel, jupyterMiBPerKernel } = await densityRows();
      printTable([46, 16, 16, 16], ['measure', 'value', 'at load', 'note'], rows);
      console.log(`density_sessions=${SESSIONS} worker_mib_per_kernel=${workerMiBPerKernel.toFixed(2)} jupyter_mib_per_kernel=${jupyterMiBPerKernel.toFixed(2)}`);
    } finally {
      await cleanUp();
    }
  });
}
