/**
 * Output flood: one execution prints FLOOD_MB (1024) MiB while a client follows it over SSE.
 * Measured in the same run: the raw kernel (the same print through @jupyterlab/services, no
 * queue) for the time it takes, then end to end through the api and one worker with the peak
 * resident memory (VmHWM) of the api, the worker and the worker's Jupyter server. Goal: api and
 * worker each under 300 MB.
 *
 *   npm run bench:flood            (FLOOD_MB=256 npm run bench:flood for a shorter run)
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Execution } from '@kernelfleet/contracts';
import { JupyterServer, KernelClient, kernelEnvironment } from '@kernelfleet/kernel';
import { Stack } from '../test/support/stack';
import { prepareBench, printTable, runMain } from './app-snapshot';

const FLOOD_MB = Number(process.env.FLOOD_MB ?? 1024);
const CODE = `import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(${FLOOD_MB} * 1024):\n    sys.stdout.write(line)`;
const MIB = 1_048_576;

/** Peak and current resident memory of a process, in MiB (from /proc/<pid>/status). */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

/** The Python child of a worker process: its Jupyter server. */
function jupyterOf(workerPid: number): number {
  const children = readFileSync(`/proc/${workerPid}/task/${workerPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const server = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kernelfleet_jupyter'));
  if (!server) throw new Error(`no Jupyter server below worker ${workerPid}`);
  return server;
}

/** Follows an execution's SSE stream to its end, counting stdout bytes without keeping them. */
async function followBytes(stack: Stack, executionId: string): Promise<{ bytes: number; events: number }> {
  const res = await fetch(`${stack.url}/v1/executions/${executionId}/events`, { headers: { Authorization: `Bearer ${stack.apiKey}` } });
  if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let bytes = 0;
  let events = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!block.startsWith('event: stdout') && !block.includes('\nevent: stdout')) continue;
      events += 1;
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data) bytes += Buffer.byteLength((JSON.parse(data.slice(6)) as { text: string }).text);
    }
  }
  return { bytes, events };
}

async function main(): Promise<void> {
  const { python, cleanUp } = await prepareBench();
  const rows: string[][] = [];
  let stack: Stack | undefined;
  try {
    // Baseline: the same print straight from a kernel, no queue, no api.
    const server = await JupyterServer.start({ python, rootDir: mkdtempSync(join(tmpdir(), 'kf-flood-')), env: kernelEnvironment(process.env) });
    try {
      const client = new KernelClient({ baseUrl: server.url, token: server.token });
      const kernel = await client.startKernel({ timeoutMs: 30_000 });
      let rawBytes = 0;
      const rawStart = Date.now();
      const outcome = await kernel.execute(CODE, { onStream: (_n, text) => (rawBytes += Buffer.byteLength(text)), onDisplay: () => undefined });
      const rawSeconds = (Date.now() - rawStart) / 1000;
      if (outcome.status !== 'ok') throw new Error(`raw flood: ${outcome.status}`);
      rows.push(['raw kernel (no queue)', `${(rawBytes / MIB).toFixed(0)} MiB`, `${rawSeconds.toFixed(1)} s`, `${(rawBytes / MIB / rawSeconds).toFixed(0)} MiB/s`, `bench process ${memoryOf(process.pid).peak.toFixed(0)} MiB peak`]);
      await kernel.shutdown();
      kernel.dispose();
    } finally {
      await server.stop();
    }

    stack = await Stack.start({ workerEnv: { KERNEL_POOL_SIZE: '0' } });
    await stack.run('flood', { code: 'None' });
    const [api, worker] = [stack.apis[0].child.pid!, stack.workers[0].child.pid!];
    const jupyter = jupyterOf(worker);
    const before = { api: memoryOf(api).now, worker: memoryOf(worker).now, jupyter: memoryOf(jupyter).now };
    const start = Date.now();
    const accepted = await stack.submit('flood', { code: CODE, timeoutMs: 600_000 });
    const followed = await followBytes(stack, accepted.executionId);
    const execution = (await stack.settled(accepted.executionId, 600_000)) as Execution;
    const seconds = (Date.now() - start) / 1000;
    if (execution.status !== 'completed') throw new Error(`flood: ${execution.status}`);
    const result = execution.result!;
    rows.push([
      'end to end (SSE follower)',
      `${(result.totalBytes / MIB).toFixed(0)} MiB`,
      `${seconds.toFixed(1)} s`,
      `${(result.totalBytes / MIB / seconds).toFixed(0)} MiB/s`,
      `kept ${result.outputBytes} B, streamed ${(followed.bytes / MIB).toFixed(1)} MiB in ${followed.events} events`,
    ]);
    for (const [name, pid] of [['api', api], ['worker', worker], ['Jupyter server (worker side)', jupyter]] as const) {
      const m = memoryOf(pid);
      const baseline = before[name === 'api' ? 'api' : name === 'worker' ? 'worker' : 'jupyter'];
      rows.push([`${name} RSS`, `${baseline.toFixed(0)} MiB before`, `${m.peak.toFixed(0)} MiB peak`, `${m.now.toFixed(0)} MiB after`, name === 'Jupyter server (worker side)' ? '' : m.peak < 300 ? 'goal < 300 MB: met' : 'goal < 300 MB: NOT met']);
    }
  } finally {
    await stack?.stop();
    await cleanUp();
  }
  printTable([32, 16, 16, 14, 50], ['measure', 'output / before', 'time / peak', 'rate / after', 'note'], rows);
}

runMain(main);
