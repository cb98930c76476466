import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KernelfleetClient } from '@kernelfleet/client';
import type { Execution } from '@kernelfleet/contracts';
import { filePath, rawRequest, type RawAnswer } from '../support/files-client';
import { Stack } from '../support/stack';

jest.setTimeout(180_000);

const MIB = 1_048_576;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The printed stdout of a completed execution. */
async function python(stack: Stack, sessionId: string, code: string, key?: string): Promise<string> {
  const execution = await stack.run(sessionId, { code, timeoutMs: 60_000 }, { key });
  expect(execution.result?.output).toBeDefined();
  if (execution.status !== 'completed') throw new Error(`python ${execution.status}: ${execution.result?.output}`);
  return execution.result!.output;
}

describe('session files', () => {
  let stack: Stack;
  const put = (sessionId: string, path: string, body: Buffer | string | Readable, key = stack.apiKey, headers?: Record<string, string>) =>
    rawRequest(stack.url, 'PUT', filePath(sessionId, path), { key, body, headers });
  const get = (sessionId: string, path: string, key = stack.apiKey) => rawRequest(stack.url, 'GET', filePath(sessionId, path), { key });

  beforeAll(async () => {
    stack = await Stack.start({ workers: 1, workerEnv: { FILE_MAX_BYTES: String(80 * MIB) }, apiEnv: { FILE_MAX_BYTES: String(80 * MIB) } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('a file put before an execution is there when it runs, byte for byte', async () => {
    const data = randomBytes(300_000);
    const written = await put('files-up', 'input/data.bin', data);
    expect(written.status).toBe(201);
    expect(written.json).toEqual({ path: 'input/data.bin', size: data.length, sha256: sha256(data) });
    const seen = await python(stack, 'files-up', "import hashlib; print(hashlib.sha256(open('input/data.bin','rb').read()).hexdigest())");
    expect(seen.trim()).toBe(sha256(data));
    // The same path again replaces the file: 200.
    const again = await put('files-up', 'input/data.bin', 'short');
    expect(again.status).toBe(200);
    expect(await python(stack, 'files-up', "print(open('input/data.bin').read())")).toBe('short\n');
  });

  it('a body sent as JSON, form or text is stored as sent: the api parses no file body', async () => {
    const bodies: [string, string][] = [
      ['application/json', '{ "not": "reformatted",\n  "bytes": [1, 2] }'],
      ['application/json; charset=latin1', 'not even JSON'],
      ['application/x-www-form-urlencoded', 'a=1&b=%20'],
      ['text/plain', 'plain text'],
    ];
    for (const [type, text] of bodies) {
      const written = await put('files-typed', 'typed.txt', text, stack.apiKey, { 'content-type': type });
      expect({ type, status: written.status, size: written.json?.size }).toEqual({ type, status: expect.any(Number), size: Buffer.byteLength(text) });
      expect([200, 201]).toContain(written.status);
      expect((await get('files-typed', 'typed.txt')).body.toString()).toBe(text);
    }
  });

  it('what Python wrote (50 MiB, binary) downloads byte-identical, with Content-Length', async () => {
    const digest = await python(
      stack,
      'files-down',
      [
        'import hashlib, os',
        'data = bytes(range(256)) * (50 * 4096)',
        "os.makedirs('out', exist_ok=True)",
        "open('out/blob.bin', 'wb').write(data)",
        'print(hashlib.sha256(data).hexdigest())',
      ].join('\n'),
    );
    const res = await get('files-down', 'out/blob.bin');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(50 * MIB));
    expect(res.body.length).toBe(50 * MIB);
    expect(sha256(res.body)).toBe(digest.trim());
  });

  it('lists (sorted, by prefix, paged) and deletes files and folders', async () => {
    for (const path of ['b.txt', 'a/2.txt', 'a/1.txt', 'a/sub/3.txt', 'c/4.txt']) expect((await put('files-ls', path, path)).status).toBe(201);
    const all = await rawRequest(stack.url, 'GET', '/v1/sessions/files-ls/files', { key: stack.apiKey });
    expect(all.status).toBe(200);
    expect(all.json.files.map((f: { path: string }) => f.path)).toEqual(['a/1.txt', 'a/2.txt', 'a/sub/3.txt', 'b.txt', 'c/4.txt']);
    expect(all.json.files[0]).toEqual({ path: 'a/1.txt', size: 7, modifiedAt: expect.any(Number) });
    expect(all.json.nextCursor).toBeNull();

    const pages: string[][] = [];
    let cursor = '';
    do {
      const page = await rawRequest(stack.url, 'GET', `/v1/sessions/files-ls/files?prefix=a%2F&limit=2&cursor=${encodeURIComponent(cursor)}`, { key: stack.apiKey });
      pages.push(page.json.files.map((f: { path: string }) => f.path));
      cursor = page.json.nextCursor ?? '';
    } while (cursor);
    expect(pages).toEqual([['a/1.txt', 'a/2.txt'], ['a/sub/3.txt']]);

    expect((await rawRequest(stack.url, 'DELETE', filePath('files-ls', 'b.txt'), { key: stack.apiKey })).status).toBe(204);
    expect((await rawRequest(stack.url, 'DELETE', filePath('files-ls', 'a'), { key: stack.apiKey })).status).toBe(204);
    const gone = await rawRequest(stack.url, 'DELETE', filePath('files-ls', 'b.txt'), { key: stack.apiKey });
    expect(gone.status).toBe(404);
    expect(gone.headers['content-type']).toContain('application/problem+json');
    expect(await python(stack, 'files-ls', "import os; print(sorted(os.listdir('.')))")).toBe("['c']\n");
    expect((await get('files-ls', 'b.txt')).status).toBe(404);
  });

  it('keeps write, run, write, run in the order they were submitted, under concurrent submission', async () => {
    const session = 'files-chain';
    // A cell that holds the lane while the chain is submitted behind it.
    const blocker = await stack.submit(session, { code: 'import time; time.sleep(1.5)' });
    const pendingNow = async () => (await stack.request('GET', `/v1/sessions/${session}`)).json.pending as number;
    const steps: Promise<unknown>[] = [];
    const submitted: string[] = [];
    for (let round = 1; round <= 4; round++) {
      const before = await pendingNow();
      steps.push(put(session, 'state.txt', `round ${round}`));
      // The next step is submitted once this one is accepted (the lane holds one more).
      while ((await pendingNow()) === before) await new Promise((r) => setTimeout(r, 10));
      const accepted = await stack.submit(session, {
        code: "print(open('state.txt').read()); _ = open('log.txt', 'a').write(open('state.txt').read() + '\\n')",
        timeoutMs: 60_000,
      });
      submitted.push(accepted.executionId);
    }
    const writes = (await Promise.all(steps)) as RawAnswer[];
    expect(writes.map((w) => w.status)).toEqual([201, 200, 200, 200]);
    const reads = await Promise.all(submitted.map((id) => stack.settled(id)));
    expect(reads.map((r) => r.result?.output)).toEqual(['round 1\n', 'round 2\n', 'round 3\n', 'round 4\n']);
    expect((await stack.get(blocker.executionId)).status).toBe('completed');
    // And a read submitted after them sees everything they wrote.
    expect((await get(session, 'log.txt')).body.toString()).toBe('round 1\nround 2\nround 3\nround 4\n');
  });

  it('syncs a folder in and out as a tar archive; an archive with a link in it changes nothing', async () => {
    const local = mkdtempSync(join(tmpdir(), 'kf-tar-'));
    try {
      mkdirSync(join(local, 'in', 'src', 'deep'), { recursive: true });
      writeFileSync(join(local, 'in', 'src', 'main.py'), "print('from the archive')\n");
      writeFileSync(join(local, 'in', 'src', 'deep', 'data.bin'), randomBytes(200_000));
      writeFileSync(join(local, 'in', 'empty.txt'), '');
      execFileSync('tar', ['-C', join(local, 'in'), '-cf', join(local, 'in.tar'), '.']);
      const up = await rawRequest(stack.url, 'PUT', filePath('files-tar', 'ws', 'format=tar'), { key: stack.apiKey, body: readFileSync(join(local, 'in.tar')) });
      expect(up.status).toBe(200);
      expect(up.json).toEqual({ path: 'ws', files: 3, bytes: 200_000 + 26 });
      expect(await python(stack, 'files-tar', "exec(open('ws/src/main.py').read())")).toBe('from the archive\n');

      const down = await rawRequest(stack.url, 'GET', filePath('files-tar', 'ws', 'format=tar'), { key: stack.apiKey });
      expect(down.status).toBe(200);
      expect(down.headers['content-type']).toBe('application/x-tar');
      mkdirSync(join(local, 'out'));
      writeFileSync(join(local, 'out.tar'), down.body);
      execFileSync('tar', ['-C', join(local, 'out'), '-xf', join(local, 'out.tar')]);
      for (const file of ['src/main.py', 'src/deep/data.bin', 'empty.txt']) {
        expect(readFileSync(join(local, 'out', file))).toEqual(readFileSync(join(local, 'in', file)));
      }

      // A link member refuses the whole archive: not even its regular files land.
      mkdirSync(join(local, 'bad'));
      writeFileSync(join(local, 'bad', 'ok.txt'), 'fine');
      symlinkSync('/etc/passwd', join(local, 'bad', 'pw'));
      execFileSync('tar', ['-C', join(local, 'bad'), '-cf', join(local, 'bad.tar'), '.']);
      const refused = await rawRequest(stack.url, 'PUT', filePath('files-tar', 'ws', 'format=tar'), { key: stack.apiKey, body: readFileSync(join(local, 'bad.tar')) });
      expect(refused.status).toBe(400);
      expect(refused.json.code).toBe('bad_archive');
      const listed = await rawRequest(stack.url, 'GET', '/v1/sessions/files-tar/files', { key: stack.apiKey });
      expect(listed.json.files.map((f: { path: string }) => f.path)).toEqual(['ws/empty.txt', 'ws/src/deep/data.bin', 'ws/src/main.py']);
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  });

  it('works through the client library: write, read, list, remove, and a folder synced up and down', async () => {
    const client = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const written = await client.files.write('files-client', 'notes/a b.txt', 'über');
    expect(written).toMatchObject({ path: 'notes/a b.txt', size: 5, created: true });
    expect(await client.files.readText('files-client', 'notes/a b.txt')).toBe('über');
    const result = await client.executePython("print(open('notes/a b.txt').read())", { sessionId: 'files-client' });
    expect(result.output).toBe('über\n');
    const local = mkdtempSync(join(tmpdir(), 'kf-sync-'));
    try {
      mkdirSync(join(local, 'up', 'pkg'), { recursive: true });
      writeFileSync(join(local, 'up', 'pkg', 'mod.py'), 'X = 42\n');
      await client.files.syncUp('files-client', join(local, 'up'), 'proj');
      await client.executePython("import sys; sys.dont_write_bytecode = True; sys.path.insert(0, 'proj'); from pkg.mod import X; open('proj/out.txt', 'w').write(str(X * 2))", {
        sessionId: 'files-client',
      });
      await client.files.syncDown('files-client', 'proj', join(local, 'down'));
      expect(readFileSync(join(local, 'down', 'out.txt'), 'utf8')).toBe('84');
      expect(readFileSync(join(local, 'down', 'pkg', 'mod.py'), 'utf8')).toBe('X = 42\n');
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
    const paths: string[] = [];
    for await (const file of client.files.listAll('files-client')) paths.push(file.path);
    expect(paths).toEqual(['notes/a b.txt', 'proj/out.txt', 'proj/pkg/mod.py']);
    expect(await client.files.remove('files-client', 'notes')).toBe(true);
    expect(await client.files.remove('files-client', 'notes')).toBe(false);
    await expect(client.files.read('files-client', 'notes/a b.txt')).rejects.toMatchObject({ status: 404 });
  });

  it('another tenant finds nothing: its session of the same name has no files', async () => {
    expect((await put('files-tenant', 'secret.txt', 'mine')).status).toBe(201);
    const theirs = await get('files-tenant', 'secret.txt', stack.otherKey);
    expect(theirs.status).toBe(404);
    expect(theirs.body.toString()).not.toContain('mine');
    const listed = await rawRequest(stack.url, 'GET', '/v1/sessions/files-tenant/files', { key: stack.otherKey });
    expect(listed.json.files).toEqual([]);
    expect((await get('files-tenant', 'secret.txt')).body.toString()).toBe('mine');
  });

  it('refuses paths that leave the folder (400, nothing read or written)', async () => {
    expect((await put('files-paths', 'inside.txt', 'inside')).status).toBe(201);
    const hostile = [
      '..', '../etc/passwd', 'a/../../etc/passwd', '%2e%2e', '%2e%2e/%2e%2e/etc/passwd', '%2E%2E%2Fetc%2Fpasswd',
      '..%2f..%2fetc%2fpasswd', '..%252f..%252fetc', '%252e%252e', '/etc/passwd', '%2fetc%2fpasswd', '%2F%2Fetc',
      'a%5c..%5c..%5cetc', '..%5c..%5cwindows', 'a%00b', 'inside.txt%00.png', '%c0%ae%c0%ae/etc', '%e0%80%ae%e0%80%ae',
      'a/./b', './inside.txt', '.', 'a//b', 'a/', '%', '%zz', `${'x'.repeat(1100)}`, 'a/%2e/b', 'a%2f%2e%2e%2f%2e%2e',
      '%2e%2e%2f%2e%2e%2froot', 'a%0ab',
    ];
    expect(hostile.length).toBeGreaterThanOrEqual(25);
    for (const raw of hostile) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await rawRequest(stack.url, method, `/v1/sessions/files-paths/files/${raw}`, { key: stack.apiKey, body: method === 'PUT' ? 'x' : undefined });
        if (![400, 404].includes(res.status) || res.body.toString().includes('root:x:0:0')) {
          throw new Error(`${method} ${raw}: ${res.status} ${res.body.toString().slice(0, 200)}`);
        }
        expect(res.headers['content-type']).toContain('application/problem+json');
      }
    }
    // Nothing was written anywhere in the folder, and the file in it is untouched.
    const listed = await rawRequest(stack.url, 'GET', '/v1/sessions/files-paths/files', { key: stack.apiKey });
    expect(listed.json.files.map((f: { path: string }) => f.path)).toEqual(['inside.txt']);
    expect((await get('files-paths', 'inside.txt')).body.toString()).toBe('inside');
  });

  it('never follows a link that code in the kernel made: not to /etc/passwd, not into another session, not to the worker', async () => {
    const passwd = readFileSync('/etc/passwd');
    // Another session's folder, with a secret in it; and a file of the worker's own.
    expect((await put('files-victim', 'secret.txt', 'victim secret')).status).toBe(201);
    const victimFolder = (await python(stack, 'files-victim', 'import os; print(os.getcwd())')).trim();
    const workerFile = `${process.cwd()}/package.json`;
    const workerBefore = readFileSync(workerFile);
    await python(
      stack,
      'files-links',
      [
        'import os',
        "os.symlink('/etc/passwd', 'pw')",
        `os.symlink(${JSON.stringify(victimFolder)}, 'other')`,
        `os.symlink(${JSON.stringify(workerFile)}, 'worker.json')`,
        "os.symlink('/etc', 'etc')",
        "os.mkfifo('pipe')",
      ].join('\n'),
    );
    const attempts: [string, string][] = [
      ['GET', 'pw'], ['GET', 'other/secret.txt'], ['GET', 'worker.json'], ['GET', 'etc/passwd'], ['GET', 'pipe'],
      ['PUT', 'other/secret.txt'], ['PUT', 'other/new.txt'], ['PUT', 'etc/evil'], ['DELETE', 'other/secret.txt'], ['DELETE', 'etc/passwd'],
    ];
    for (const [method, path] of attempts) {
      const res = await rawRequest(stack.url, method, filePath('files-links', path), { key: stack.apiKey, body: method === 'PUT' ? 'overwritten' : undefined });
      const text = res.body.toString();
      if (res.status < 400 || text.includes('root:x:0:0') || text.includes('victim secret') || text.includes('"name": "kernelfleet"')) {
        throw new Error(`${method} ${path} went through a link: ${res.status} ${text.slice(0, 200)}`);
      }
    }
    // A link named like the file being written is replaced by the file, never written through.
    expect((await put('files-links', 'pw', 'replaced the link')).status).toBe(200);
    expect(await python(stack, 'files-links', "import os; print(os.path.islink('pw'), open('pw').read())")).toBe('False replaced the link\n');
    // Deleting a link removes the link itself.
    expect((await rawRequest(stack.url, 'DELETE', filePath('files-links', 'worker.json'), { key: stack.apiKey })).status).toBe(204);
    // Links, pipes are not listed; nothing outside changed.
    const listed = await rawRequest(stack.url, 'GET', '/v1/sessions/files-links/files', { key: stack.apiKey });
    expect(listed.json.files.map((f: { path: string }) => f.path)).toEqual(['pw']);
    expect(readFileSync('/etc/passwd')).toEqual(passwd);
    expect(readFileSync(workerFile)).toEqual(workerBefore);
    expect((await get('files-victim', 'secret.txt')).body.toString()).toBe('victim secret');
    const victimFiles = await rawRequest(stack.url, 'GET', '/v1/sessions/files-victim/files', { key: stack.apiKey });
    expect(victimFiles.json.files.map((f: { path: string }) => f.path)).toEqual(['secret.txt']);
  });

  it('a folder swapped for a link while a large upload streams into it: the bytes never land outside', async () => {
    expect((await put('files-race-victim', 'keep.txt', 'victim')).status).toBe(201);
    const victimFolder = (await python(stack, 'files-race-victim', 'import os; print(os.getcwd())')).trim();
    // A thread of the kernel keeps swapping `d` between a real folder and a link to the victim's folder.
    await python(
      stack,
      'files-race',
      [
        'import os, threading, time',
        "os.makedirs('d', exist_ok=True)",
        'def swap():',
        '    end = time.time() + 60',
        '    while time.time() < end:',
        '        try:',
        "            os.rename('d', 'd.real'); os.symlink(" + JSON.stringify(victimFolder) + ", 'd'); time.sleep(0.002)",
        "            os.unlink('d'); os.rename('d.real', 'd'); time.sleep(0.002)",
        '        except OSError:',
        '            pass',
        'threading.Thread(target=swap, daemon=True).start()',
      ].join('\n'),
    );
    const big = randomBytes(64 * MIB);
    for (let i = 0; i < 3; i++) {
      const res = await put('files-race', 'd/big.bin', Readable.from([big.subarray(0, 32 * MIB), big.subarray(32 * MIB)]));
      // Written inside the folder, or refused: a link in the path (409).
      if (![200, 201, 409].includes(res.status)) throw new Error(`upload ${i}: ${res.status} ${res.body.toString().slice(0, 300)}`);
    }
    const victimFiles = await rawRequest(stack.url, 'GET', '/v1/sessions/files-race-victim/files', { key: stack.apiKey });
    expect(victimFiles.json.files.map((f: { path: string }) => f.path)).toEqual(['keep.txt']);
    expect(statSync(victimFolder, { throwIfNoEntry: false })?.isDirectory() ?? true).toBe(true);
  });
});

describe('session files: limits', () => {
  let stack: Stack;
  beforeAll(async () => {
    const limits = { FILE_MAX_BYTES: String(MIB) };
    // Kernels idle for 3 s are culled (and their folders with them).
    stack = await Stack.start({ workers: 1, apiEnv: limits, workerEnv: { ...limits, SESSION_FILES_MAX_BYTES: String(2.5 * MIB), KERNEL_IDLE_MS: '3000' } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('413 for a file over FILE_MAX_BYTES, declared or streamed; nothing is left behind', async () => {
    const declared = await rawRequest(stack.url, 'PUT', filePath('limits', 'big.bin'), { key: stack.apiKey, body: randomBytes(MIB + 1) });
    expect(declared.status).toBe(413);
    expect(declared.json.detail).toContain('FILE_MAX_BYTES');
    // Chunked, no Content-Length: the worker stops it as the bytes arrive.
    const streamed = await rawRequest(stack.url, 'PUT', filePath('limits', 'big.bin'), {
      key: stack.apiKey,
      body: Readable.from([randomBytes(MIB / 2), randomBytes(MIB / 2), randomBytes(MIB / 2)]),
    });
    expect(streamed.status).toBe(413);
    expect(streamed.json.code).toBe('file_too_large');
    const listed = await rawRequest(stack.url, 'GET', '/v1/sessions/limits/files', { key: stack.apiKey });
    expect(listed.json.files).toEqual([]);
  });

  it('413 naming the session quota once uploads would pass SESSION_FILES_MAX_BYTES', async () => {
    for (const name of ['1.bin', '2.bin']) {
      expect((await rawRequest(stack.url, 'PUT', filePath('quota', name), { key: stack.apiKey, body: randomBytes(MIB) })).status).toBe(201);
    }
    const over = await rawRequest(stack.url, 'PUT', filePath('quota', '3.bin'), { key: stack.apiKey, body: randomBytes(MIB) });
    expect(over.status).toBe(413);
    expect(over.json.code).toBe('quota_exceeded');
    expect(over.json.detail).toContain('SESSION_FILES_MAX_BYTES');
    // Replacing a file counts its old size out.
    expect((await rawRequest(stack.url, 'PUT', filePath('quota', '2.bin'), { key: stack.apiKey, body: randomBytes(MIB) })).status).toBe(200);
  });

  it('a disposed session\'s folder is deleted (files: none); a culled one\'s too (files: lost, stateLost next)', async () => {
    const session = (name: string) => stack.request('GET', `/v1/sessions/${name}`).then((r) => r.json);
    for (const name of ['disposed', 'culled']) {
      expect((await rawRequest(stack.url, 'PUT', filePath(name, 'f.txt'), { key: stack.apiKey, body: name })).status).toBe(201);
    }
    const folders = await Promise.all(
      ['disposed', 'culled'].map(async (name) => (await stack.run(name, { code: 'import os; print(os.getcwd())' })).result!.output.trim()),
    );
    expect((await stack.request('DELETE', '/v1/sessions/disposed')).status).toBe(200);
    const until = Date.now() + 30_000;
    // A culled session is released first, then its folder goes.
    while ((existsSync(folders[0]) || existsSync(folders[1]) || (await session('culled')).files !== 'lost') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(existsSync(folders[0])).toBe(false);
    expect((await session('disposed')).files).toBe('none');
    expect((await session('culled')).files).toBe('lost');
    expect(existsSync(folders[1])).toBe(false);
    const next = await stack.run('culled', { code: "import os; print(os.path.exists('f.txt'))" });
    expect(next.kernel?.stateLost).toBe(true);
    expect(next.result?.output).toBe('False\n');
    expect((await rawRequest(stack.url, 'GET', filePath('disposed', 'f.txt'), { key: stack.apiKey })).status).toBe(404);
  });
});

describe('session files across workers', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ apis: 2, workers: 2 });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** A session homed on `workerName`: new sessions until one lands there. */
  async function sessionOn(workerName: string, prefix: string): Promise<string> {
    for (let i = 0; i < 40; i++) {
      const session = `${prefix}-${i}`;
      const execution: Execution = await stack.run(session, { code: '1' });
      if (execution.kernel?.workerId === workerName) return session;
    }
    throw new Error(`no session landed on ${workerName}`);
  }

  it('reaches a session homed on the second worker through either api', async () => {
    const session = await sessionOn(stack.workers[1].name, 'far');
    const data = randomBytes(2 * MIB);
    expect((await rawRequest(stack.urls[0], 'PUT', filePath(session, 'x.bin'), { key: stack.apiKey, body: data })).status).toBe(201);
    const back = await rawRequest(stack.urls[1], 'GET', filePath(session, 'x.bin'), { key: stack.apiKey });
    expect(sha256(back.body)).toBe(sha256(data));
    const where = await stack.request('GET', `/v1/sessions/${session}`);
    expect(where.json).toMatchObject({ workerId: stack.workers[1].name, files: 'kept' });
  });

  it('a lost worker takes its sessions\' files with it: the session says so, the files are gone, the next result says stateLost', async () => {
    const session = await sessionOn(stack.workers[0].name, 'lost');
    expect((await rawRequest(stack.url, 'PUT', filePath(session, 'notes.txt'), { key: stack.apiKey, body: 'soon gone' })).status).toBe(201);
    await stack.workers[0].stop('SIGKILL');
    // The other worker's reaper finds the lease lapsed and hands the session back as lost.
    const until = Date.now() + 60_000;
    let info = (await stack.request('GET', `/v1/sessions/${session}`)).json;
    while (info.files !== 'lost' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      info = (await stack.request('GET', `/v1/sessions/${session}`)).json;
    }
    expect(info).toMatchObject({ workerId: null, files: 'lost', kernel: { state: 'lost' } });
    const read = await rawRequest(stack.url, 'GET', filePath(session, 'notes.txt'), { key: stack.apiKey });
    expect(read.status).toBe(404);
    const next = await stack.run(session, { code: "import os; print(os.path.exists('notes.txt'))" });
    expect(next.kernel?.stateLost).toBe(true);
    expect(next.result?.output).toBe('False\n');
  });

  it('a drained worker hands its sessions back without their files (decided: lost, docs/files.md), and deletes its folders', async () => {
    const drained = await stack.startWorker();
    const session = await sessionOn(drained.name, 'drained');
    expect((await rawRequest(stack.url, 'PUT', filePath(session, 'kept.txt'), { key: stack.apiKey, body: 'until the drain' })).status).toBe(201);
    const folder = (await stack.run(session, { code: 'import os; print(os.getcwd())' })).result!.output.trim();
    expect(existsSync(join(folder, 'kept.txt'))).toBe(true);
    await drained.stop('SIGTERM');
    expect(drained.child.exitCode).toBe(0);
    expect(existsSync(folder)).toBe(false);
    const info = (await stack.request('GET', `/v1/sessions/${session}`)).json;
    expect(info).toMatchObject({ workerId: null, files: 'lost' });
    expect((await rawRequest(stack.url, 'GET', filePath(session, 'kept.txt'), { key: stack.apiKey })).status).toBe(404);
    const next = await stack.run(session, { code: "import os; print(os.path.exists('kept.txt'))" });
    expect(next.kernel?.stateLost).toBe(true);
    expect(next.result?.output).toBe('False\n');
  });
});
