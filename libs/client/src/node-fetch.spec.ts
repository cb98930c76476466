import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { nodeFetch } from './node-fetch';

/**
 * The client's fetch on Node's http module, against a real HTTP server on a loopback port: what
 * the client reads of a `Response` (status, headers, JSON, a stream read as it arrives), aborts,
 * failures, and connections kept alive.
 */

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server;
let base: string;
let handler: Handler;
const connections: Socket[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString()));
  });
  server.on('connection', (socket: Socket) => connections.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const notUsed = (() => Promise.reject(new Error('the fallback was used'))) as typeof fetch;
const fetchOnNode = nodeFetch(notUsed);

describe('nodeFetch', () => {
  it('sends the method, headers and body, and answers status, headers and JSON', async () => {
    handler = (req, res, body) => {
      res.writeHead(202, { 'content-type': 'application/json', location: '/v1/executions/ex_1' });
      res.end(JSON.stringify({ method: req.method, auth: req.headers.authorization, length: req.headers['content-length'], body: JSON.parse(body) }));
    };
    const res = await fetchOnNode(`${base}/v1/x`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ code: 'print("é")' }) });
    expect(res.status).toBe(202);
    expect(res.ok).toBe(true);
    expect(res.headers.get('location')).toBe('/v1/executions/ex_1');
    // Content-Length counts bytes, not characters.
    expect(await res.json()).toEqual({ method: 'POST', auth: 'Bearer k', length: '24', body: { code: 'print("é")' } });
  });

  it('hands a stream of the body to the reader as it arrives, before the answer ends', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 1\n\n');
      void released.then(() => res.end('id: 2\n\n'));
    };
    const res = await fetchOnNode(`${base}/events`, {});
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('id: 1\n\n');
    release();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('id: 2\n\n');
    expect((await reader.read()).done).toBe(true);
  });

  it('reads a body larger than its read-ahead whole and in order', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    handler = (_req, res) => res.end(big);
    const res = await fetchOnNode(`${base}/big`, {});
    expect(Buffer.from(await res.arrayBuffer()).equals(big)).toBe(true);
  });

  it('keeps the connection alive between requests', async () => {
    handler = (_req, res) => res.end('ok');
    const before = connections.length;
    for (let i = 0; i < 3; i++) expect(await (await fetchOnNode(`${base}/again`, {})).text()).toBe('ok');
    expect(connections.length - before).toBeLessThanOrEqual(1);
  });

  it('keeps the connection of a stream cancelled just before its end, and closes one that does not end', async () => {
    let openClosed!: Promise<void>;
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(req.url === '/ending' ? 'event: result\n\n' : 'event: stdout\n\n');
      // The end comes in a write of its own, after the reader has what it waited for.
      if (req.url === '/ending') setTimeout(() => res.end(), 20);
      else openClosed = new Promise((resolve) => res.on('close', resolve));
    };
    const before = connections.length;
    for (let i = 0; i < 3; i++) {
      const reader = (await fetchOnNode(`${base}/ending`, {})).body!.getReader();
      await reader.read();
      await reader.cancel();
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    expect(connections.length - before).toBeLessThanOrEqual(1);
    const reader = (await fetchOnNode(`${base}/open`, {})).body!.getReader();
    await reader.read();
    const cancelledAt = Date.now();
    await reader.cancel();
    await openClosed;
    expect(Date.now() - cancelledAt).toBeLessThan(2_000);
  });

  it('answers a 204 with no body, and a problem with its status', async () => {
    handler = (req, res) => {
      if (req.url === '/none') return void res.writeHead(204).end();
      res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"title":"no such execution","status":404}');
    };
    const none = await fetchOnNode(`${base}/none`, { method: 'DELETE' });
    expect([none.status, none.body]).toEqual([204, null]);
    const missing = await fetchOnNode(`${base}/missing`, {});
    expect([missing.status, missing.ok, await missing.json()]).toEqual([404, false, { title: 'no such execution', status: 404 }]);
  });

  it("rejects with the signal's reason when aborted before the answer, and fails the body's read when aborted during it", async () => {
    handler = (req, res) => {
      if (req.url === '/slow') return; // never answers
      res.writeHead(200);
      res.write('first');
    };
    const early = new AbortController();
    const pending = fetchOnNode(`${base}/slow`, { signal: early.signal });
    setTimeout(() => early.abort(new Error('caller gave up')), 20);
    await expect(pending).rejects.toThrow('caller gave up');

    const late = new AbortController();
    const res = await fetchOnNode(`${base}/stream`, { signal: late.signal });
    const reader = res.body!.getReader();
    await reader.read();
    late.abort(new Error('stream no longer wanted'));
    await expect(reader.read()).rejects.toThrow('stream no longer wanted');

    const already = new AbortController();
    already.abort(new Error('aborted before'));
    await expect(fetchOnNode(`${base}/stream`, { signal: already.signal })).rejects.toThrow('aborted before');
  });

  it('fails the read when the server closes the connection before the answer ends', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 1\n\n');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const reader = (await fetchOnNode(`${base}/dropped`, {})).body!.getReader();
    await reader.read();
    await expect(reader.read()).rejects.toBeInstanceOf(TypeError);
  });

  it('rejects with a TypeError carrying the cause when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await fetchOnNode(`http://127.0.0.1:${port}/`, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('hands what it does not send itself (a stream body) to the fallback', async () => {
    const seen: unknown[] = [];
    const fallback = (async (input: string | URL | Request, init?: RequestInit) => (seen.push(init?.body), new Response('from fallback'))) as typeof fetch;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    const res = await nodeFetch(fallback)(`${base}/upload`, { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
    expect(await res.text()).toBe('from fallback');
    expect(seen).toEqual([stream]);
  });
});
