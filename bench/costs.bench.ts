/**
 * Costs of one api replica and of the output path, for `npm run bench` (bench/round-trip.bench.ts):
 *
 * - accepts per second: `POST …/executions` answered `202` (no wait), from many connections
 *   kept alive, while the stack's worker runs what was accepted;
 * - time to the first output byte: from the submit to the first stdout chunk at a client
 *   following the event stream (SSE), against the time from the request to the first IOPub
 *   `stream` message of a raw kernel.
 */
import { Agent, request } from 'node:http';
import type { KernelHandle } from '@kernelfleet/kernel';
import type { Stack } from '../test/support/stack';
import { withDescendants } from './process-cpu';

/** Quotas out of the way of the accept rate (the bench's stack only): the api's env. */
export const UNLIMITED_SUBMITS = {
  QUOTA_SUBMITS_PER_SECOND: '1000000',
  QUOTA_SUBMIT_BURST: '1000000',
  QUOTA_PENDING_PER_TENANT: '1000000',
  QUOTA_PENDING_PER_SESSION: '1000000',
};

/**
 * One POST with Node's own `http` module on a kept-alive connection; answers the status and, with
 * `readBody`, the body (else it is drained unread: the accept rate's load generator shares the
 * api's cores, so it does no more than it must).
 */
export function post(agent: Agent, url: URL, headers: Record<string, string>, body: string, readBody = false): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      if (readBody) res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      else res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Submissions per second one api answers with `202`, from `connections` clients each sending
 * its next as soon as the last was answered, round-robin over `sessions` (give sessions that
 * have their kernels: new ones would measure kernel starts), for `ms`. Any other status stops
 * the run: the rate must not count refusals.
 */
export async function acceptsPerSecond(stack: Stack, opts: { ms: number; connections: number; sessions: string[] }): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const headers = { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' };
  const body = JSON.stringify({ code: 'pass' });
  const urls = opts.sessions.map((session) => new URL(`${stack.url}/v1/sessions/${session}/executions`));
  const urlOf = (i: number) => urls[i % urls.length];
  let accepted = 0;
  let next = 0;
  const run = async (until: number, count: boolean) => {
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        while (Date.now() < until) {
          const { status } = await post(agent, urlOf(next++), headers, body);
          if (status !== 202) throw new Error(`submission answered ${status}, not 202`);
          if (count) accepted += 1;
        }
      }),
    );
  };
  try {
    await run(Date.now() + 1_000, false); // warm-up: connections open, code paths compiled
    const started = Date.now();
    await run(started + opts.ms, true);
    return (accepted * 1000) / (Date.now() - started);
  } finally {
    agent.destroy();
  }
}

/**
 * `fn` run with the worker processes of `stack` and everything below them (Jupyter servers,
 * kernels) stopped (SIGSTOP), then continued: what one api does when nothing else on the
 * machine takes its cores.
 */
export async function withWorkersPaused<T>(stack: Stack, fn: () => Promise<T>): Promise<T> {
  const pids = withDescendants(stack.workers.map((w) => w.child.pid!));
  pids.forEach((pid) => process.kill(pid, 'SIGSTOP'));
  try {
    return await fn();
  } finally {
    pids.forEach((pid) => process.kill(pid, 'SIGCONT'));
  }
}

/** One run of `code` (default `1+1`) on a raw kernel, its output dropped; throws unless it ends `ok`. */
export const rawExecute = (kernel: KernelHandle, code = '1+1') => async () => {
  const outcome = await kernel.execute(code, { onStream: () => undefined, onDisplay: () => undefined });
  if (outcome.status !== 'ok') throw new Error(`raw execution failed: ${JSON.stringify(outcome)}`);
};

const FIRST_OUTPUT_CODE = "print('x')";

/** Milliseconds from the request to the first IOPub stream message of a raw kernel, `n` times. */
export function rawFirstOutput(kernel: KernelHandle, n: number): Promise<number[]> {
  return firstOutputSamples(n, async (onFirst) => {
    const outcome = await kernel.execute(FIRST_OUTPUT_CODE, { onStream: onFirst, onDisplay: () => undefined });
    if (outcome.status !== 'ok') throw new Error(`raw execution ${outcome.status}`);
  });
}

/** Milliseconds from the submit to the first output chunk at a client on the event stream (SSE). */
export function sseFirstOutput(executePython: (code: string, onChunk: () => void) => Promise<string>, n: number): Promise<number[]> {
  return firstOutputSamples(n, async (onFirst) => {
    const status = await executePython(FIRST_OUTPUT_CODE, onFirst);
    if (status !== 'completed') throw new Error(`execution ${status}`);
  });
}

async function firstOutputSamples(n: number, once: (onFirst: () => void) => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    let first: bigint | undefined;
    await once(() => (first ??= process.hrtime.bigint()));
    if (first === undefined) throw new Error('no output arrived');
    samples.push(Number(first - start) / 1e6);
  }
  return samples;
}
