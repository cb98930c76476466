import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelfleetClient } from './client';
import { KernelfleetConnectionError, KernelfleetError } from './errors';
import { sessionFilePathProblem } from './session-files';
import { TarError } from './tar';

/** client.files against a scripted fetch: the requests it sends, and what it makes of the answers. */

const encoder = new TextEncoder();

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  duplex?: string;
}

type Answer = Response | Error | ((sent: Sent) => Response);

/** A fetch answering each request with the next of `answers`; records what was sent, body read. */
function scripted(answers: Answer[]) {
  const sent: Sent[] = [];
  const fetchImpl = (async (url: string, init: RequestInit & { duplex?: string }) => {
    const body = init.body == null ? undefined : new Uint8Array(await new Response(init.body).arrayBuffer());
    const request = { method: init.method ?? 'GET', url, headers: init.headers as Record<string, string>, body, duplex: init.duplex };
    sent.push(request);
    const next = answers.shift();
    if (!next) throw new Error(`no answer scripted for ${request.method} ${url}`);
    if (next instanceof Error) throw next;
    return typeof next === 'function' ? next(request) : next;
  }) as unknown as typeof fetch;
  const client = new KernelfleetClient({ baseUrl: 'http://api.test/', apiKey: 'k1', fetch: fetchImpl, retry: { baseDelayMs: 1 } });
  return { sent, files: client.files };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const problem = (status: number, detail: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: 'https://kernelfleet.dev/problems/x', title: 'refused', status, detail }), { status, headers: { 'content-type': 'application/problem+json', ...headers } });
const written = (path: string, size: number) => ({ path, size, sha256: 'ab'.repeat(32) });
const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

/** A stream of `pieces` that records whether it was cancelled. */
function streamOf(pieces: string[]) {
  const state = { cancelled: false, pulled: 0 };
  const queue = [...pieces];
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        state.pulled += 1;
        const next = queue.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(encoder.encode(next));
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

describe('client.files', () => {
  it('writes to the path with each segment percent-encoded, and tells a new file (201) from a replaced one (200)', async () => {
    const { sent, files } = scripted([json(201, written('a b/ü.txt', 5)), json(200, written('a b/ü.txt', 5))]);
    expect(await files.write('s1', 'a b/ü.txt', 'hello')).toEqual({ ...written('a b/ü.txt', 5), created: true });
    expect(await files.write('s1', 'a b/ü.txt', 'hello', { timeoutMs: 5000 })).toMatchObject({ created: false });
    expect(sent.map((s) => [s.method, s.url])).toEqual([
      ['PUT', 'http://api.test/v1/sessions/s1/files/a%20b/%C3%BC.txt'],
      ['PUT', 'http://api.test/v1/sessions/s1/files/a%20b/%C3%BC.txt?timeoutMs=5000'],
    ]);
    expect(sent[0].headers).toEqual({ authorization: 'Bearer k1', 'content-type': 'application/octet-stream' });
    expect(text(sent[0].body)).toBe('hello');
  });

  it('sends a string (as UTF-8), bytes, an ArrayBuffer, a Blob and a stream as the same bytes; a stream half-duplex', async () => {
    const { sent, files } = scripted(Array.from({ length: 5 }, () => json(200, written('f', 6))));
    const bytes = encoder.encode('héllo');
    await files.write('s1', 'f', 'héllo');
    await files.write('s1', 'f', bytes);
    await files.write('s1', 'f', bytes.slice().buffer);
    await files.write('s1', 'f', new Blob([bytes]));
    await files.write('s1', 'f', streamOf(['h', 'é', 'llo']).stream);
    expect(sent.map((s) => text(s.body))).toEqual(['héllo', 'héllo', 'héllo', 'héllo', 'héllo']);
    expect(sent.map((s) => s.duplex)).toEqual([undefined, undefined, undefined, undefined, 'half']);
  });

  it.each([
    ['../x', '../x'],
    ['/etc/passwd', '/etc/passwd'],
    ['a//b', 'a//b'],
    ['a/./b', 'a/./b'],
    ['a/', 'a/'],
    ['an empty path', ''],
    ['1026 bytes', 'é'.repeat(513)],
  ])('refuses %s before sending anything', async (_label, path) => {
    const { sent, files } = scripted([]);
    await expect(files.write('s1', path, 'x')).rejects.toThrow(TypeError);
    await expect(files.read('s1', path)).rejects.toThrow(/is not a session file path/);
    await expect(files.remove('s1', path)).rejects.toThrow(/is not a session file path/);
    expect(sent).toEqual([]);
  });

  it('says why a path is refused, counting UTF-8 bytes', () => {
    expect(sessionFilePathProblem('../x')).toBe('has a ".." segment');
    expect(sessionFilePathProblem('a b/ü.txt')).toBeUndefined();
    expect(sessionFilePathProblem('é'.repeat(512))).toBeUndefined();
    expect(sessionFilePathProblem('é'.repeat(513))).toBe('is longer than 1024 bytes');
    expect(sessionFilePathProblem('/abs')).toMatch(/absolute/);
  });

  it('reads a file as bytes, as text and as a stream; a missing file is a KernelfleetError 404', async () => {
    const content = () => new Response(encoder.encode('naïve\n'), { status: 200, headers: { 'content-type': 'application/octet-stream' } });
    const { sent, files } = scripted([content(), content(), content(), problem(404, 'no file notes/x.txt')]);
    expect(await files.read('s1', 'notes/x.txt')).toEqual(encoder.encode('naïve\n'));
    expect(await files.readText('s1', 'notes/x.txt', { timeoutMs: 100 })).toBe('naïve\n');
    expect(text(new Uint8Array(await new Response(await files.readStream('s1', 'notes/x.txt')).arrayBuffer()))).toBe('naïve\n');
    const missing = await files.read('s1', 'notes/x.txt').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KernelfleetError);
    expect(missing).toMatchObject({ status: 404, detail: 'no file notes/x.txt' });
    expect(sent.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET http://api.test/v1/sessions/s1/files/notes/x.txt',
      'GET http://api.test/v1/sessions/s1/files/notes/x.txt?timeoutMs=100',
      'GET http://api.test/v1/sessions/s1/files/notes/x.txt',
      'GET http://api.test/v1/sessions/s1/files/notes/x.txt',
    ]);
  });

  it('removes: true when it removed the path, false when there was nothing (404); other refusals are thrown', async () => {
    const { sent, files } = scripted([new Response(null, { status: 204 }), problem(404, 'no such path'), problem(409, 'out/link goes through a link')]);
    expect(await files.remove('s1', 'out')).toBe(true);
    expect(await files.remove('s1', 'out')).toBe(false);
    await expect(files.remove('s1', 'out/link')).rejects.toMatchObject({ status: 409, detail: 'out/link goes through a link' });
    expect(sent.map((s) => `${s.method} ${s.url}`)).toEqual([
      'DELETE http://api.test/v1/sessions/s1/files/out',
      'DELETE http://api.test/v1/sessions/s1/files/out',
      'DELETE http://api.test/v1/sessions/s1/files/out/link',
    ]);
  });

  it('lists one page with its query, and listAll follows nextCursor to the last page', async () => {
    const file = (path: string) => ({ path, size: 1, modifiedAt: 1_700_000_000_000 });
    const { sent, files } = scripted([
      json(200, { files: [file('data/x y')], nextCursor: 'c 1' }),
      json(200, { files: [file('a'), file('b')], nextCursor: 'c 1' }),
      json(200, { files: [file('c')], nextCursor: 'c2' }),
      json(200, { files: [], nextCursor: 'c3' }),
      json(200, { files: [file('d')], nextCursor: null }),
    ]);
    expect(await files.list('s1', { prefix: 'data/x y', limit: 1 })).toEqual({ files: [file('data/x y')], nextCursor: 'c 1' });
    const all: string[] = [];
    for await (const entry of files.listAll('s1', { prefix: '' })) all.push(entry.path);
    expect(all).toEqual(['a', 'b', 'c', 'd']);
    expect(sent.map((s) => s.url.replace('http://api.test/v1/sessions/s1/files', ''))).toEqual([
      '?prefix=data%2Fx%20y&limit=1',
      '?prefix=',
      '?prefix=&cursor=c%201',
      '?prefix=&cursor=c2',
      '?prefix=&cursor=c3',
    ]);
  });

  it('moves folders as tar archives, under a folder or at the session’s root', async () => {
    const archive = new Uint8Array(1024);
    const { sent, files } = scripted([
      json(200, { path: 'out dir', files: 2, bytes: 10 }),
      json(200, { path: '', files: 0, bytes: 0 }),
      new Response(archive, { status: 200, headers: { 'content-type': 'application/x-tar' } }),
      new Response(archive, { status: 200, headers: { 'content-type': 'application/x-tar' } }),
    ]);
    expect(await files.uploadTar('s1', 'out dir', archive, { timeoutMs: 1000 })).toEqual({ path: 'out dir', files: 2, bytes: 10 });
    await files.uploadTar('s1', '', new Blob([archive]));
    expect((await new Response(await files.downloadTar('s1', 'out dir')).arrayBuffer()).byteLength).toBe(1024);
    await files.downloadTar('s1', '');
    expect(sent.map((s) => `${s.method} ${s.url} ${s.headers['content-type'] ?? ''}`.trim())).toEqual([
      'PUT http://api.test/v1/sessions/s1/files/out%20dir?format=tar&timeoutMs=1000 application/x-tar',
      'PUT http://api.test/v1/sessions/s1/files?format=tar application/x-tar',
      'GET http://api.test/v1/sessions/s1/files/out%20dir?format=tar',
      'GET http://api.test/v1/sessions/s1/files?format=tar',
    ]);
    expect(sent[0].body).toEqual(archive);
    await expect(files.downloadTar('s1', '../up')).rejects.toThrow(TypeError);
  });

  it('throws a 413 as a KernelfleetError with its detail, without retrying', async () => {
    const { sent, files } = scripted([problem(413, 'the session’s files would take 2 GiB; its quota is 1 GiB')]);
    await expect(files.write('s1', 'big.bin', new Uint8Array(10))).rejects.toMatchObject({ status: 413, detail: 'the session’s files would take 2 GiB; its quota is 1 GiB' });
    expect(sent).toHaveLength(1);
  });
});

describe('client.files retries', () => {
  it('sends bytes again after a 503 and after a network error', async () => {
    const { sent, files } = scripted([problem(503, 'redis', { 'retry-after': '0' }), new TypeError('fetch failed'), json(201, written('f', 5))]);
    expect(await files.write('s1', 'f', 'hello')).toMatchObject({ created: true });
    expect(sent.map((s) => text(s.body))).toEqual(['hello', 'hello', 'hello']);
  });

  it('sends a stream again when an attempt failed before reading any of it', async () => {
    const { stream, state } = streamOf(['he', 'llo']);
    const attempts: string[] = [];
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      if (attempts.push('attempt') === 1) throw new TypeError('fetch failed (connection refused)');
      expect(text(new Uint8Array(await new Response(init.body).arrayBuffer()))).toBe('hello');
      return json(201, written('f', 5));
    }) as unknown as typeof fetch;
    const files = new KernelfleetClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fetchImpl, retry: { baseDelayMs: 1 } }).files;
    expect(await files.write('s1', 'f', stream)).toMatchObject({ created: true });
    expect(attempts).toHaveLength(2);
    expect(state.cancelled).toBe(false);
  });

  it('does not send a stream again once part of it went: the failure is thrown as a connection error, the stream cancelled', async () => {
    const { stream, state } = streamOf(['he', 'llo']);
    let attempts = 0;
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      attempts += 1;
      await (init.body as ReadableStream<Uint8Array>).getReader().read();
      throw new TypeError('fetch failed (connection reset)');
    }) as unknown as typeof fetch;
    const files = new KernelfleetClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fetchImpl, retry: { baseDelayMs: 1 } }).files;
    const error = await files.write('s1', 'f', stream).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelfleetConnectionError);
    expect((error as Error).message).toMatch(/^PUT \/v1\/sessions\/s1\/files\/f failed once its body had started going .*: fetch failed \(connection reset\)$/);
    expect(attempts).toBe(1);
    expect(state.cancelled).toBe(true);
  });

  it('does not send a stream again after a 503 that came once it had gone', async () => {
    const { sent, files } = scripted([problem(503, 'redis', { 'retry-after': '0' }), json(201, written('f', 5))]);
    await expect(files.write('s1', 'f', streamOf(['hello']).stream)).rejects.toMatchObject({ status: 503 });
    expect(sent).toHaveLength(1);
  });

  it('reports what the caller’s stream failed with rather than fetch’s own error', async () => {
    const broken = new ReadableStream<Uint8Array>({
      pull() {
        throw new Error('the disk went away');
      },
    });
    // As undici does: the body's failure becomes the cause of a TypeError "fetch failed".
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      await new Response(init.body).arrayBuffer().catch((cause: unknown) => {
        throw new TypeError('fetch failed', { cause });
      });
      return json(201, written('f', 0));
    }) as unknown as typeof fetch;
    const files = new KernelfleetClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fetchImpl }).files;
    await expect(files.write('s1', 'f', broken)).rejects.toThrow('the disk went away');
  });
});

describe('client.files with local files (Node)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'kf-files-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const LONG = `${'long-folder-name/'.repeat(4)}${'x'.repeat(90)}.txt`;

  /** dir/local: files, an empty file, an empty folder, a long path, and a link (which syncUp skips). */
  function localTree(): string {
    const root = join(dir, 'local');
    const files: Record<string, string> = { 'a.txt': 'a\n', 'sub/b.txt': 'b\n', 'sub/empty': '', [LONG]: 'far\n' };
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    mkdirSync(join(root, 'hollow'));
    symlinkSync('/etc/passwd', join(root, 'link'));
    return root;
  }

  it('syncUp sends the folder as one tar archive that GNU tar reads, links left out', async () => {
    const { sent, files } = scripted([json(200, { path: 'dest', files: 4, bytes: 9 })]);
    const answer = await files.syncUp('s1', localTree(), 'dest', { timeoutMs: 60_000 });
    expect(answer).toEqual({ path: 'dest', files: 4, bytes: 9 });
    expect(sent[0]).toMatchObject({ method: 'PUT', url: 'http://api.test/v1/sessions/s1/files/dest?format=tar&timeoutMs=60000', duplex: 'half' });
    writeFileSync(join(dir, 'sent.tar'), sent[0].body!);
    const names = execFileSync('tar', ['-tf', 'sent.tar'], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    const folders = LONG.split('/').slice(0, -1).map((_, i, all) => `${all.slice(0, i + 1).join('/')}/`);
    expect(names).toEqual(['a.txt', 'hollow/', 'sub/', 'sub/b.txt', 'sub/empty', LONG, ...folders].sort());
    mkdirSync(join(dir, 'check'));
    execFileSync('tar', ['-xf', '../sent.tar'], { cwd: join(dir, 'check') });
    expect(readFileSync(join(dir, 'check', LONG), 'utf8')).toBe('far\n');
    expect(readFileSync(join(dir, 'check', 'sub', 'b.txt'), 'utf8')).toBe('b\n');
  });

  /** A tar archive of dir/remote made by GNU tar, as the api's answer. */
  function remoteArchive(prepare: (root: string) => void): Response {
    const root = join(dir, 'remote');
    mkdirSync(root);
    prepare(root);
    execFileSync('tar', ['-cf', '../remote.tar', '.'], { cwd: root });
    return new Response(readFileSync(join(dir, 'remote.tar')), { status: 200, headers: { 'content-type': 'application/x-tar' } });
  }

  it('syncDown extracts the session’s folder into the local one, creating it', async () => {
    const archive = remoteArchive((root) => {
      mkdirSync(join(root, 'results', 'plots'), { recursive: true });
      mkdirSync(join(root, 'hollow'));
      writeFileSync(join(root, 'results', 'table.csv'), 'a,b\n1,2\n');
      writeFileSync(join(root, 'results', 'plots', 'p.png'), Buffer.alloc(70_000, 7));
      writeFileSync(join(root, 'results', 'empty'), '');
    });
    const { sent, files } = scripted([archive]);
    const into = join(dir, 'into', 'here');
    expect(await files.syncDown('s1', 'out', into)).toEqual({ files: 3, bytes: 8 + 70_000 });
    expect(sent[0].url).toBe('http://api.test/v1/sessions/s1/files/out?format=tar');
    expect(readFileSync(join(into, 'results', 'table.csv'), 'utf8')).toBe('a,b\n1,2\n');
    expect(readFileSync(join(into, 'results', 'plots', 'p.png'))).toEqual(Buffer.alloc(70_000, 7));
    expect(readFileSync(join(into, 'results', 'empty'))).toHaveLength(0);
    expect(lstatSync(join(into, 'hollow')).isDirectory()).toBe(true);
  });

  it('syncDown refuses a link in the archive and does not make it', async () => {
    const archive = remoteArchive((root) => {
      writeFileSync(join(root, 'a.txt'), 'a');
      symlinkSync('/etc', join(root, 'z-etc'));
    });
    const { files } = scripted([archive]);
    const into = join(dir, 'into');
    await expect(files.syncDown('s1', '', into)).rejects.toThrow(TarError);
    expect(existsSync(join(into, 'z-etc'))).toBe(false);
  });

  it('syncDown does not write through a local link in the way', async () => {
    const archive = remoteArchive((root) => {
      mkdirSync(join(root, 'sub'));
      writeFileSync(join(root, 'sub', 'planted'), 'x');
      writeFileSync(join(root, 'top'), 'y');
    });
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const into = join(dir, 'into');
    mkdirSync(into);
    symlinkSync(outside, join(into, 'sub'));
    symlinkSync(join(outside, 'top'), join(into, 'top'));
    const { files } = scripted([archive]);
    await expect(files.syncDown('s1', '', into)).rejects.toThrow(/is in the way: it is not a (folder|file) but a link/);
    expect(existsSync(join(outside, 'planted'))).toBe(false);
    expect(existsSync(join(outside, 'top'))).toBe(false);
  });

  it('writeFile and readFile stream a local file up and down', async () => {
    const content = Buffer.alloc(300_000, 'kf');
    writeFileSync(join(dir, 'up.bin'), content);
    const { sent, files } = scripted([json(201, written('in/up.bin', content.length)), new Response(content, { status: 200 })]);
    expect(await files.writeFile('s1', 'in/up.bin', join(dir, 'up.bin'))).toMatchObject({ path: 'in/up.bin', created: true });
    expect(sent[0]).toMatchObject({ method: 'PUT', url: 'http://api.test/v1/sessions/s1/files/in/up.bin', duplex: 'half' });
    expect(Buffer.from(sent[0].body!).equals(content)).toBe(true);
    await files.readFile('s1', 'in/up.bin', join(dir, 'down.bin'));
    expect(readFileSync(join(dir, 'down.bin')).equals(content)).toBe(true);
  });
});
