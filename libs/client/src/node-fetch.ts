import type { ClientRequest, IncomingMessage, RequestOptions as NodeRequestOptions } from 'node:http';

/**
 * The client's `fetch` on Node: requests through Node's own `http` and `https` modules on kept-alive
 * connections, answered as the `Response`s the rest of the client reads. The global fetch
 * (undici) spends about 0.3 ms more of the client's CPU and time on every request
 * (docs/benchmarks.md, *The client's call, made cheaper*), which a warm `1+1` of 4 ms notices.
 *
 * What it does not do, it hands to `fallback` (the global fetch): bodies that are not a string
 * or bytes (a stream, a form), a `Request` as input, and schemes other than http and https.
 * Like fetch, a network failure rejects with a TypeError (the cause attached) and an abort with
 * the signal's reason; unlike it, redirects are not followed (the api answers none) and bodies
 * are never decompressed (it asks for none).
 */
export function nodeFetch(fallback: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const { body } = init;
    const sendable = body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    const url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : undefined;
    if (!sendable || !url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return fallback(input, init);
    const { request, agent } = await transportFor(url.protocol);
    return send(request, url, { method: init.method ?? 'GET', headers: headersOf(init.headers), agent }, body ?? undefined, init.signal ?? undefined);
  }) as typeof fetch;
}

/** The client's default: {@link nodeFetch} on Node, the global fetch elsewhere (browsers). */
export function defaultFetch(): typeof fetch | undefined {
  const global = globalThis.fetch?.bind(globalThis);
  const onNode = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string';
  return onNode && global ? nodeFetch(global) : global;
}

type Requester = (url: URL, options: NodeRequestOptions) => ClientRequest;

interface Transport {
  request: Requester;
  agent: import('node:http').Agent;
}

const transports = new Map<string, Promise<Transport>>();

/** One kept-alive agent per scheme, loaded when first used so the module stays browser-safe. */
function transportFor(protocol: string): Promise<Transport> {
  let transport = transports.get(protocol);
  if (!transport) {
    const loaded = protocol === 'https:' ? import('node:https') : import('node:http');
    transport = loaded.then((mod) => ({ request: mod.request, agent: new mod.Agent({ keepAlive: true }) }));
    transports.set(protocol, transport);
  }
  return transport;
}

function headersOf(init: HeadersInit | undefined): Record<string, string> {
  if (init === undefined) return {};
  if (!(init instanceof Headers) && !Array.isArray(init)) return init;
  const headers: Record<string, string> = {};
  new Headers(init).forEach((value, name) => (headers[name] = value));
  return headers;
}

/** How long a cancelled answer may take to end before its connection is closed instead of kept. */
const LINGER_MS = 500;

/** Statuses whose answers have no body (a `Response` refuses one). */
const NO_BODY = new Set([101, 204, 205, 304]);

function send(request: Requester, url: URL, options: NodeRequestOptions, body: string | Uint8Array | undefined, signal: AbortSignal | undefined): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let failStream: ((reason: unknown) => void) | undefined;
    const onAbort = () => {
      req.destroy();
      if (failStream) failStream(signal!.reason);
      else reject(signal!.reason);
    };
    const settled = () => signal?.removeEventListener('abort', onAbort);
    if (body !== undefined) options.headers = { ...options.headers, 'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength) };
    const req = request(url, options);
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (error) => {
      settled();
      reject(new TypeError(error.message, { cause: error }));
    });
    req.on('response', (incoming: IncomingMessage) => {
      const headers = new Headers();
      for (let i = 0; i < incoming.rawHeaders.length; i += 2) headers.append(incoming.rawHeaders[i], incoming.rawHeaders[i + 1]);
      const init = { status: incoming.statusCode ?? 0, statusText: incoming.statusMessage ?? '', headers };
      if (options.method === 'HEAD' || NO_BODY.has(init.status)) {
        incoming.resume();
        settled();
        return resolve(new Response(null, init));
      }
      const stream = bodyOf(incoming, settled);
      failStream = stream.fail;
      resolve(new Response(stream.body, init));
    });
    req.end(body);
  });
}

/** The answer's body as a web stream that reads from the socket as its reader asks (64 KiB ahead). */
function bodyOf(incoming: IncomingMessage, settled: () => void): { body: ReadableStream<Uint8Array>; fail: (reason: unknown) => void } {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const finish = (end: () => void) => {
    if (!open) return;
    open = false;
    settled();
    end();
  };
  const fail = (reason: unknown) => {
    incoming.destroy();
    finish(() => controller.error(reason));
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        incoming.on('data', (chunk: Buffer) => {
          if (!open) return;
          controller.enqueue(new Uint8Array(chunk));
          if ((controller.desiredSize ?? 0) <= 0) incoming.pause();
        });
        incoming.on('end', () => finish(() => controller.close()));
        // A connection closed before the answer's end: "aborted" (ECONNRESET), as fetch's body fails.
        incoming.on('error', (error) => finish(() => controller.error(new TypeError(error.message, { cause: error }))));
      },
      pull() {
        incoming.resume();
      },
      cancel() {
        open = false;
        settled();
        // A stream cancelled after its last event, whose end is still on the wire, is read to
        // that end so its connection is kept for the next request; one still open after a
        // moment is closed.
        const timer = setTimeout(() => incoming.destroy(), LINGER_MS);
        timer.unref?.();
        incoming.once('close', () => clearTimeout(timer));
        incoming.resume();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
  return { body, fail };
}
