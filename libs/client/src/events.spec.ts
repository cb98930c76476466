import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { KernelfleetClient } from './client';
import { KernelfleetConnectionError, KernelfleetError } from './errors';
import { followEvents } from './events';
import { HttpTransport } from './http';
import type { Execution, ExecutionEvent } from './types';

/**
 * Following an execution's events over connections that drop, end early or go silent, against
 * a scripted fetch: every event once, in order, resumed with Last-Event-ID.
 */

const encoder = new TextEncoder();

const sse = (event: ExecutionEvent) => `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;

function finalExecution(status: Execution['status'] = 'completed', output = 'x\n'): Execution {
  return {
    executionId: 'ex_1',
    sessionId: 's1',
    seq: 1,
    status,
    kernelMode: 'session',
    timings: { acceptedAt: 1, deadlineAt: 2 },
    result: {
      output,
      exitCode: status === 'completed' ? 0 : null,
      cancelled: status === 'cancelled',
      truncated: false,
      totalLines: 2,
      totalBytes: output.length,
      outputLines: 2,
      outputBytes: output.length,
      displayOutputs: [],
      stdinRequested: false,
    },
    kernel: { workerId: 'w1', generation: 1, stateLost: false, restarted: false },
  };
}

/** Events 1..n: queued, started, stdout `line i` …, result. */
function script(lines: number): ExecutionEvent[] {
  const events: ExecutionEvent[] = [
    { seq: 1, type: 'queued', data: { seq: 1 } },
    { seq: 2, type: 'started', data: { workerId: 'w1' } },
  ];
  for (let i = 0; i < lines; i++) events.push({ seq: events.length + 1, type: 'stdout', data: { text: `line ${i}\n` } });
  events.push({ seq: events.length + 1, type: 'result', data: finalExecution() });
  return events;
}

/** What one connection does: sends the text pieces, then ends (`end`), fails (`error`) or stays open (`hang`). */
interface Connection {
  status?: number;
  headers?: Record<string, string>;
  pieces: string[];
  then: 'end' | 'error' | 'hang';
  /** A pause before each piece. */
  delayMs?: number;
}

/** A fetch that answers each events request with the next scripted connection; records Last-Event-ID. */
function eventsApi(connections: Connection[]) {
  const lastEventIds: (string | undefined)[] = [];
  const fetchImpl = (async (_url: string, init: RequestInit) => {
    const headers = init.headers as Record<string, string>;
    lastEventIds.push(headers['last-event-id']);
    const connection = connections.shift();
    if (!connection) throw new TypeError('fetch failed (no more connections scripted)');
    if (connection.status && connection.status !== 200) {
      return new Response(JSON.stringify({ title: 'refused', status: connection.status }), { status: connection.status, headers: connection.headers });
    }
    // One piece per read, then the ending: an error discards what is still queued, as a real
    // connection does not (what arrived was read), so the ending waits for the reads.
    const pieces = [...connection.pieces];
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          init.signal?.addEventListener('abort', () => controller.error(init.signal?.reason));
        },
        async pull(controller) {
          if (connection.delayMs) await new Promise((r) => setTimeout(r, connection.delayMs));
          const piece = pieces.shift();
          if (piece !== undefined) return controller.enqueue(encoder.encode(piece));
          if (connection.then === 'end') controller.close();
          if (connection.then === 'error') controller.error(new TypeError('terminated'));
          if (connection.then === 'hang') return new Promise<void>(() => undefined);
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  }) as unknown as typeof fetch;
  return { fetchImpl, lastEventIds };
}

async function collect(transport: HttpTransport, idleTimeoutMs = 10_000): Promise<ExecutionEvent[]> {
  const seen: ExecutionEvent[] = [];
  for await (const event of followEvents(transport, 'ex_1', { after: 0, idleTimeoutMs })) seen.push(event);
  return seen;
}

describe('followEvents', () => {
  it('delivers every event once and in order across drops, a cut inside an event, an early end and a replayed overlap', async () => {
    const events = script(8);
    const text = events.map(sse);
    const cutInside = text[4].slice(0, 9); // "id: 5\neve": half an event, to be discarded
    const { fetchImpl, lastEventIds } = eventsApi([
      { pieces: [':keepalive\n\n', ...text.slice(0, 4), cutInside], then: 'error' },
      // The server replays from an older seq than asked: the client skips what it has.
      { pieces: [text[2] + text[3] + text[4], text[5]], then: 'end' },
      { pieces: [], then: 'error' },
      { pieces: text.slice(6, 10), then: 'error' },
      { pieces: text.slice(10), then: 'end' },
    ]);
    const transport = new HttpTransport('http://api.test', 'k', fetchImpl, { attempts: 3, baseDelayMs: 1 });
    const seen = await collect(transport);
    expect(seen).toEqual(events);
    expect(seen.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(lastEventIds).toEqual([undefined, '4', '6', '6', '10']);
  });

  it('takes a connection silent past idleTimeoutMs as dropped, but not one kept alive by comments', async () => {
    const events = script(2);
    const text = events.map(sse);
    const { fetchImpl, lastEventIds } = eventsApi([
      { pieces: text.slice(0, 2), then: 'hang' },
      { pieces: text.slice(2), then: 'end' },
    ]);
    const started = Date.now();
    const seen = await collect(new HttpTransport('http://api.test', 'k', fetchImpl, { baseDelayMs: 1 }), 300);
    expect(seen).toEqual(events);
    expect(lastEventIds).toEqual([undefined, '2']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    // Keepalive comments every 50 ms for 600 ms, twice the idle limit: the same connection goes on.
    const kept = eventsApi([{ pieces: [text[0], ...Array(12).fill(':\n\n'), ...text.slice(1)], then: 'end', delayMs: 50 }]);
    expect(await collect(new HttpTransport('http://api.test', 'k', kept.fetchImpl, { baseDelayMs: 1 }), 300)).toEqual(events);
    expect(kept.lastEventIds).toEqual([undefined]);
  });

  it('retries a 503 with its Retry-After, and throws a 404 at once as a KernelfleetError', async () => {
    const events = script(1);
    const ok = eventsApi([{ status: 503, headers: { 'retry-after': '0' }, pieces: [], then: 'end' }, { pieces: events.map(sse), then: 'end' }]);
    expect(await collect(new HttpTransport('http://api.test', 'k', ok.fetchImpl, { baseDelayMs: 1 }))).toEqual(events);

    const gone = eventsApi([{ status: 404, pieces: [], then: 'end' }, { pieces: events.map(sse), then: 'end' }]);
    const error = await collect(new HttpTransport('http://api.test', 'k', gone.fetchImpl)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelfleetError);
    expect(error).toMatchObject({ status: 404 });
    expect(gone.lastEventIds).toHaveLength(1);
  });

  it('gives up after the retry budget of one outage with KernelfleetConnectionError, keeping what it delivered', async () => {
    const events = script(3);
    const text = events.map(sse);
    const { fetchImpl } = eventsApi([
      { pieces: text.slice(0, 3), then: 'error' },
      { pieces: [], then: 'error' },
      { pieces: [], then: 'error' },
      { pieces: [], then: 'error' },
    ]);
    const seen: ExecutionEvent[] = [];
    const error = await (async () => {
      for await (const event of followEvents(new HttpTransport('http://api.test', 'k', fetchImpl, { attempts: 2, baseDelayMs: 1 }), 'ex_1', { after: 0, idleTimeoutMs: 10_000 })) {
        seen.push(event);
      }
    })().catch((e: unknown) => e);
    expect(seen).toEqual(events.slice(0, 3));
    expect(error).toBeInstanceOf(KernelfleetConnectionError);
    expect((error as Error).message).toBe('following execution ex_1 failed 3 times: terminated');
    expect((error as Error).cause).toBeInstanceOf(TypeError);
  });

  it('stops at once with the signal’s reason when the signal aborts', async () => {
    const events = script(1);
    const { fetchImpl } = eventsApi([{ pieces: events.slice(0, 2).map(sse), then: 'hang' }]);
    const controller = new AbortController();
    const seen: ExecutionEvent[] = [];
    const reason = new Error('stop following');
    const error = await (async () => {
      for await (const event of followEvents(new HttpTransport('http://api.test', 'k', fetchImpl), 'ex_1', { after: 0, idleTimeoutMs: 10_000, signal: controller.signal })) {
        seen.push(event);
        if (event.seq === 2) controller.abort(reason);
      }
    })().catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect(seen.map((e) => e.seq)).toEqual([1, 2]);
  });
});

/** The client's sources transpiled to CommonJS in a temporary folder, for a plain Node process. */
function transpiledClient(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kf-client-'));
  for (const file of readdirSync(__dirname).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(__dirname, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    writeFileSync(join(dir, file.replace(/\.ts$/, '.js')), outputText);
  }
  writeFileSync(join(dir, 'package.json'), '{ "type": "commonjs" }\n');
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The abort scenario below in a plain Node process, where an unhandled rejection ends the
 * process (Jest's sandbox does not show it): submit, a chunk, abort, the cancel refused (401),
 * then the result.
 */
const ABORT_WITH_FAILED_CANCEL = `
const { KernelfleetClient } = require('./index.js');
const enc = new TextEncoder();
const sse = (seq, type, data) => 'id: ' + seq + '\\nevent: ' + type + '\\ndata: ' + JSON.stringify(data) + '\\n\\n';
let release;
const resultMayCome = new Promise((r) => (release = r));
const result = { output: 'partial\\n', exitCode: 0, cancelled: false, truncated: false, totalLines: 2, totalBytes: 8, outputLines: 2, outputBytes: 8, displayOutputs: [], stdinRequested: false };
const fetchImpl = async (url, init) => {
  const path = new URL(url).pathname;
  if (init.method === 'POST' && path.endsWith('/executions')) return new Response(JSON.stringify({ executionId: 'ex_1', sessionId: 's1', seq: 1, status: 'queued' }), { status: 202 });
  if (path.endsWith('/cancel')) return new Response(JSON.stringify({ type: 'https://kernelfleet.dev/problems/unauthorized', title: 'Unauthorized', status: 401 }), { status: 401 });
  const body = new ReadableStream({ async start(c) {
    c.enqueue(enc.encode(sse(1, 'stdout', { text: 'partial\\n' })));
    await resultMayCome;
    await new Promise((r) => setTimeout(r, 100));
    c.enqueue(enc.encode(sse(2, 'result', { executionId: 'ex_1', sessionId: 's1', seq: 1, status: 'completed', kernelMode: 'session', timings: { acceptedAt: 1, deadlineAt: 2 }, result })));
    c.close();
  } });
  return new Response(body, { status: 200 });
};
const client = new KernelfleetClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fetchImpl });
const controller = new AbortController();
client.executePython('print(1)', { sessionId: 's1', signal: controller.signal, onChunk: () => { controller.abort(); setTimeout(release, 20); } })
  .then((r) => console.log('resolved ' + r.status), (e) => console.log('rejected ' + e.name + ' ' + e.status));
`;

describe('executePython and a cancel that fails', () => {
  it('leaves the process running, and resolves with the result the stream brought', () => {
    const client = transpiledClient();
    try {
      const out = execFileSync(process.execPath, ['-e', ABORT_WITH_FAILED_CANCEL], {
        cwd: client.dir,
        env: { ...process.env, NODE_PATH: join(__dirname, '..', '..', '..', 'node_modules') },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 20_000,
      });
      expect(out.trim()).toBe('resolved completed');
    } finally {
      client.remove();
    }
  });

  it('resolves with the result (the cell had finished) and leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let releaseResult: () => void = () => undefined;
      const resultMayCome = new Promise<void>((resolve) => (releaseResult = resolve));
      const fetchImpl = (async (url: string, init: RequestInit) => {
        const path = new URL(url).pathname;
        if (init.method === 'POST' && path === '/v1/sessions/s1/executions') {
          return new Response(JSON.stringify({ executionId: 'ex_1', sessionId: 's1', seq: 1, status: 'queued' }), { status: 202 });
        }
        if (init.method === 'POST' && path === '/v1/executions/ex_1/cancel') {
          return new Response(JSON.stringify({ type: 'https://kernelfleet.dev/problems/unauthorized', title: 'Unauthorized', status: 401 }), { status: 401 });
        }
        if (path === '/v1/executions/ex_1/events') {
          const body = new ReadableStream<Uint8Array>({
            async start(controller) {
              controller.enqueue(encoder.encode(sse({ seq: 1, type: 'stdout', data: { text: 'partial\n' } })));
              // The result comes well after the failed cancel was answered.
              await resultMayCome;
              await new Promise((r) => setTimeout(r, 50));
              controller.enqueue(encoder.encode(sse({ seq: 2, type: 'result', data: finalExecution('completed', 'partial\n') })));
              controller.close();
            },
          });
          return new Response(body, { status: 200 });
        }
        throw new Error(`unexpected ${init.method} ${path}`);
      }) as unknown as typeof fetch;

      const client = new KernelfleetClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fetchImpl });
      const controller = new AbortController();
      const chunks: string[] = [];
      const running = client.executePython('print(1)', {
        sessionId: 's1',
        signal: controller.signal,
        onChunk: (text) => {
          chunks.push(text);
          controller.abort();
          setTimeout(releaseResult, 20);
        },
      });
      const result = await running;
      await new Promise((r) => setTimeout(r, 20));
      expect(chunks).toEqual(['partial\n']);
      expect(result).toMatchObject({ status: 'completed', output: 'partial\n', exitCode: 0 });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('executePython when the caller fails', () => {
  it('cancels the execution on the server when onChunk throws, and rethrows', async () => {
    const cancels: string[] = [];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      const path = new URL(url).pathname;
      if (init.method === 'POST' && path === '/v1/sessions/s1/executions') {
        return new Response(JSON.stringify({ executionId: 'ex_1', sessionId: 's1', seq: 1, status: 'queued' }), { status: 202 });
      }
      if (init.method === 'POST' && path === '/v1/executions/ex_1/cancel') {
        cancels.push(path);
        return new Response(JSON.stringify({ executionId: 'ex_1', status: 'running' }), { status: 202 });
      }
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(sse({ seq: 1, type: 'stdout', data: { text: 'one\n' } })));
        },
      });
      return new Response(body, { status: 200 });
    }) as unknown as typeof fetch;
    const client = new KernelfleetClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fetchImpl });
    const failing = client.executePython('print(1)', {
      sessionId: 's1',
      onChunk: () => {
        throw new Error('the caller broke');
      },
    });
    await expect(failing).rejects.toThrow('the caller broke');
    expect(cancels).toEqual(['/v1/executions/ex_1/cancel']);
  });
});
