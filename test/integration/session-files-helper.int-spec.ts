import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * python/kernelfleet_files.py for real, against what kernel code can plant in its own folder.
 * As root (CI) the helper runs as the session kernel's uid, as the worker runs it, beside another
 * session's folder (another uid, 0700) and a root-only worker file; otherwise as ourselves, where
 * only its never-follow-a-link design keeps it inside. After every test nothing outside the
 * session's folder has changed and no output held a byte of what is outside.
 */
const REPO = resolve(__dirname, '..', '..');
const PYTHON = process.env.KERNELFLEET_PYTHON ?? join(REPO, '.venv', 'bin', 'python');
const HELPER = join(REPO, 'python', 'kernelfleet_files.py');
const AS_ROOT = process.getuid?.() === 0;
const KERNEL_UID = 2_000_000_990;
const OTHER_KERNEL_UID = 2_000_000_991;
const AS_KERNEL = AS_ROOT ? { uid: KERNEL_UID, gid: KERNEL_UID } : {};
const OTHER_SECRET = 'other-session-secret-7c1f';
const WORKER_SECRET = 'worker-secret-91ab';
const PASSWD = readFileSync('/etc/passwd');
const MiB = 1024 * 1024;

type Message = { [key: string]: any };
interface Finished {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Every helper output of the running test, searched for outside bytes after it. */
let outputs: Buffer[] = [];

/** One helper process: control lines as they come, stdin written with backpressure. */
class Helper {
  private stdout = Buffer.alloc(0);
  private stderr = '';
  private ended = false;
  private readonly closed: Promise<number | null>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (chunk: Buffer) => (this.stdout = Buffer.concat([this.stdout, chunk])));
    child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    child.stdin.on('error', () => undefined); // the helper stopped reading (a refusal): fine
    this.closed = once(child, 'close').then(([code]) => {
      this.ended = true;
      return code as number | null;
    });
  }

  static start(args: string[], root = SESSION): Helper {
    return new Helper(spawn(PYTHON, ['-I', '-S', HELPER, root, ...args], { cwd: '/', ...AS_KERNEL }));
  }

  /** The control lines so far, once there are `count` of them (or the helper ended). */
  async lines(count: number): Promise<Message[]> {
    for (;;) {
      const parts = this.stdout.toString('latin1').split('\n');
      if (parts.length > count || this.ended) return parts.slice(0, count).filter(Boolean).map((line) => JSON.parse(line));
      await Promise.race([once(this.child.stdout, 'data'), this.closed]);
    }
  }

  async send(data: Buffer): Promise<void> {
    const chunk = 256 * 1024;
    for (let at = 0; at < data.length && this.child.stdin.writable; at += chunk) {
      if (!this.child.stdin.write(data.subarray(at, at + chunk))) await Promise.race([once(this.child.stdin, 'drain').catch(() => undefined), this.closed]);
    }
  }

  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }

  async finish(): Promise<Finished> {
    this.child.stdin.end();
    const code = await this.closed;
    outputs.push(this.stdout);
    return { code, stdout: this.stdout, stderr: this.stderr };
  }
}

async function run(args: string[], input?: Buffer, root = SESSION): Promise<Finished> {
  const helper = Helper.start(args, root);
  if (input) await helper.send(input);
  const finished = await helper.finish();
  if (finished.code !== 0) throw new Error(`the helper ended with ${finished.code}: ${finished.stderr}`);
  return finished;
}

/** The control lines of an operation that sends no raw bytes. */
async function answer(args: string[], input?: Buffer, root = SESSION): Promise<Message[]> {
  return (await run(args, input, root)).stdout.toString('utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/** The first control line of get or get-tar, and the raw bytes after it. */
async function download(args: string[], root = SESSION): Promise<{ head: Message; body: Buffer }> {
  const { stdout } = await run(args, undefined, root);
  const newline = stdout.indexOf(10);
  return { head: JSON.parse(stdout.subarray(0, newline).toString('utf8')), body: stdout.subarray(newline + 1) };
}

interface Limits {
  maxBytes?: number;
  quota?: number;
  declared?: number;
}
const limitArgs = ({ maxBytes = 64 * MiB, quota = 256 * MiB, declared }: Limits): string[] => [
  '--max-bytes',
  String(maxBytes),
  '--quota',
  String(quota),
  ...(declared === undefined ? [] : ['--declared', String(declared)]),
];
const put = (path: string, data: Buffer, limits: Limits = {}) => answer(['put', path, ...limitArgs(limits)], data);
const putTar = (folder: string, archive: Buffer, limits: Limits = {}) => answer(['put-tar', folder, ...limitArgs(limits)], archive);
const get = (path: string) => download(['get', path]);

/** Runs Python as the session's kernel would, in its folder: how the tests plant links. */
function kernel(code: string): void {
  const done = spawnSync(PYTHON, ['-I', '-c', `import os, socket\n${code}`], { cwd: SESSION, ...AS_KERNEL, encoding: 'utf8' });
  if (done.status !== 0) throw new Error(`kernel code failed: ${done.stderr}`);
}
const py = (text: string): string => JSON.stringify(text);

interface TarMember {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'device';
  data?: string;
  linkname?: string;
}

/** A tar archive (PAX) written by Python's tarfile, which writes whatever names it is given. */
function makeTar(members: TarMember[], gzip = false): Buffer {
  const script = `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "device": tarfile.CHRTYPE}
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|gz" if spec["gzip"] else "w|", format=tarfile.PAX_FORMAT) as tar:
    for member in spec["members"]:
        info = tarfile.TarInfo(member["name"])
        info.type = kinds[member.get("type", "file")]
        info.linkname = member.get("linkname", "")
        data = member.get("data", "").encode()
        info.size = len(data) if info.type == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data))
`;
  const done = spawnSync(PYTHON, ['-I', '-c', script], { input: JSON.stringify({ members, gzip }), maxBuffer: 256 * MiB });
  if (done.status !== 0) throw new Error(done.stderr.toString());
  return done.stdout;
}

/** What an archive holds: each member's name, kind and content hash. */
function readTar(archive: Buffer): { name: string; kind: string; sha256?: string }[] {
  const script = `
import hashlib, json, sys, tarfile
found = []
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
    for member in tar:
        entry = {"name": member.name, "kind": "file" if member.isreg() else "dir" if member.isdir() else "other"}
        if member.isreg():
            entry["sha256"] = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
        found.append(entry)
print(json.dumps(found))
`;
  const done = spawnSync(PYTHON, ['-I', '-c', script], { input: archive, maxBuffer: 16 * MiB });
  if (done.status !== 0) throw new Error(done.stderr.toString());
  return JSON.parse(done.stdout.toString());
}

/** Everything below a folder, links as links: path → kind, mode, size, content hash. */
function tree(top: string, below = ''): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of readdirSync(join(top, below)).sort()) {
    const path = join(below, name);
    const st = lstatSync(join(top, path));
    found[path] = `${st.mode.toString(8)} ${st.size} ${st.isFile() ? sha256(readFileSync(join(top, path))) : ''}`;
    if (st.isDirectory()) Object.assign(found, tree(top, path));
  }
  return found;
}

const scratchLeft = (): string[] => Object.keys(tree(SESSION)).filter((path) => path.split('/').some((name) => name.startsWith('.kf-upload-')));

// The layout of a worker's kernel folders (apps/worker/src/kernels/session-folders.ts).
const BASE = mkdtempSync(join(tmpdir(), 'kf-files-helper-'));
const TENANT = join(BASE, 'tenant');
const SESSION = join(TENANT, 's-1');
const OTHER = join(TENANT, 's-2');
const WORKER_FILE = join(BASE, 'worker-secret');
/** A folder outside the session's that the kernel may write to all the same (its own /tmp). */
const KERNEL_TMP = join(BASE, 'kernel-tmp');

/** What lies outside the session's folder, to compare after each test. */
function outside(): Record<string, string> {
  const passwd = lstatSync('/etc/passwd');
  const watched = [BASE, TENANT, WORKER_FILE, OTHER, KERNEL_TMP].map((path) => {
    const st = lstatSync(path);
    return `${path} ${st.mode.toString(8)} ${st.uid} ${st.mtimeMs} ${st.isFile() ? sha256(readFileSync(path)) : readdirSync(path).sort().join('|')}`;
  });
  return {
    passwd: `${sha256(readFileSync('/etc/passwd'))} ${passwd.mtimeMs}`,
    watched: watched.join('\n'),
    other: JSON.stringify(tree(OTHER)),
    kernelTmp: JSON.stringify(tree(KERNEL_TMP)),
  };
}

describe('the session files helper (python/kernelfleet_files.py)', () => {
  let before: Record<string, string>;

  beforeAll(() => {
    chmodSync(BASE, 0o755);
    mkdirSync(TENANT, { mode: 0o711 });
    chmodSync(TENANT, 0o711);
    mkdirSync(OTHER, { mode: 0o700 });
    writeFileSync(join(OTHER, 'secret.txt'), OTHER_SECRET);
    mkdirSync(join(OTHER, 'sub'));
    writeFileSync(join(OTHER, 'sub', 'secret.txt'), OTHER_SECRET);
    writeFileSync(WORKER_FILE, WORKER_SECRET, { mode: 0o600 });
    mkdirSync(KERNEL_TMP, { mode: 0o700 });
    if (AS_ROOT) chownSync(KERNEL_TMP, KERNEL_UID, KERNEL_UID);
    if (AS_ROOT) {
      for (const path of [OTHER, join(OTHER, 'secret.txt'), join(OTHER, 'sub'), join(OTHER, 'sub', 'secret.txt')]) chownSync(path, OTHER_KERNEL_UID, OTHER_KERNEL_UID);
    }
  });

  beforeEach(() => {
    rmSync(SESSION, { recursive: true, force: true });
    mkdirSync(SESSION, { mode: 0o700 });
    if (AS_ROOT) chownSync(SESSION, KERNEL_UID, KERNEL_UID);
    outputs = [];
    before = outside();
  });

  afterEach(() => {
    expect(outside()).toEqual(before);
    for (const output of outputs) {
      for (const secret of [OTHER_SECRET, WORKER_SECRET, PASSWD.toString()]) expect(output.includes(secret)).toBe(false);
    }
  });

  afterAll(() => rmSync(BASE, { recursive: true, force: true }));

  describe('for clients', () => {
    it('puts and gets binary files byte for byte, making folders 0700 and files 0644 of the kernel', async () => {
      const data = randomBytes(3 * MiB + 17);
      const [ready, written] = await put('data/raw/blob.bin', data);
      expect(ready).toEqual({ ready: true, used: 0 });
      expect(written).toEqual({ ok: true, path: 'data/raw/blob.bin', size: data.length, sha256: sha256(data), created: true });
      const { head, body } = await get('data/raw/blob.bin');
      expect(head).toEqual({ size: data.length });
      expect(sha256(body)).toBe(sha256(data));

      expect(statSync(join(SESSION, 'data', 'raw')).mode & 0o777).toBe(0o700);
      expect(statSync(join(SESSION, 'data', 'raw', 'blob.bin')).mode & 0o777).toBe(0o644);
      if (AS_ROOT) expect(statSync(join(SESSION, 'data', 'raw', 'blob.bin')).uid).toBe(KERNEL_UID);

      const again = Buffer.from('replaced');
      expect((await put('data/raw/blob.bin', again, { declared: again.length }))[1]).toMatchObject({ created: false, size: 8, sha256: sha256(again) });
      expect((await get('data/raw/blob.bin')).body).toEqual(again);
      expect((await put('empty', Buffer.alloc(0)))[1]).toMatchObject({ size: 0, created: true });
      expect(await get('empty')).toEqual({ head: { size: 0 }, body: Buffer.alloc(0) });
      expect(scratchLeft()).toEqual([]);
    });

    it('refuses a put over a folder, below a file, or of fewer bytes than announced', async () => {
      await put('docs/a.txt', Buffer.from('a'));
      expect(await put('docs', Buffer.from('x'))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'is_a_folder' }) }]);
      expect(await put('docs/a.txt/b', Buffer.from('x'))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'not_a_folder', detail: expect.stringContaining('"docs/a.txt"') }) }]);
      const [, short] = await put('docs/a.txt', Buffer.from('xy'), { declared: 3 });
      expect(short.error).toMatchObject({ status: 400, code: 'size_mismatch' });
      expect((await get('docs/a.txt')).body.toString()).toBe('a');
      expect(scratchLeft()).toEqual([]);
    });

    it('lists regular files in byte order of their UTF-8 paths, by prefix and page by page', async () => {
      // 'ｚ' (U+FF5A) sorts before '😀' in UTF-8, after it in UTF-16.
      const paths = ['b.txt', 'a/c/d', 'a.txt', 'Z', 'a/b', 'a-b', 'é.txt', '😀.txt', 'ｚ.txt'];
      for (const path of paths) await put(path, Buffer.from(path));
      kernel(`os.symlink("/etc/passwd", "link.txt")\nos.mkfifo("pipe")\nopen(".kf-upload-left", "w").write("x")\nos.symlink(${py(OTHER)}, "a/other")`);
      const sorted = ['Z', 'a-b', 'a.txt', 'a/b', 'a/c/d', 'b.txt', 'é.txt', 'ｚ.txt', '😀.txt'];

      const [all] = await answer(['list']);
      expect(all.files.map((file: Message) => file.path)).toEqual(sorted);
      expect(all.next).toBeNull();
      const entry = all.files.find((file: Message) => file.path === 'é.txt');
      expect(entry.size).toBe(Buffer.byteLength('é.txt'));
      expect(Math.abs(entry.modifiedAt - Date.now())).toBeLessThan(60_000);

      const prefixed = async (prefix: string) => (await answer(['list', '--prefix', prefix]))[0].files.map((file: Message) => file.path);
      expect(await prefixed('a/')).toEqual(['a/b', 'a/c/d']);
      expect(await prefixed('a')).toEqual(['a-b', 'a.txt', 'a/b', 'a/c/d']);
      expect(await prefixed('a/c')).toEqual(['a/c/d']);
      expect(await prefixed('nothing')).toEqual([]);

      const pages: string[][] = [];
      for (let after = '', more = true; more; ) {
        const [page] = await answer(['list', '--after', after, '--limit', '4']);
        pages.push(page.files.map((file: Message) => file.path));
        more = page.next !== null;
        after = page.next;
      }
      expect(pages).toEqual([sorted.slice(0, 4), sorted.slice(4, 8), sorted.slice(8)]);

      const [used] = await answer(['usage']);
      expect(used).toEqual({ bytes: paths.reduce((sum, path) => sum + Buffer.byteLength(path), 0) + 1, files: paths.length + 1 }); // + the temp file
    });

    it('deletes a file, a folder with all it holds, and a link itself', async () => {
      await put('d/x/y.txt', Buffer.from('y'));
      await put('d/z.txt', Buffer.from('z'));
      kernel(`os.symlink(${py(OTHER)}, "d/other")\nos.symlink("/etc/passwd", "d/x/pw")\nos.symlink(${py(OTHER)}, "link")`);
      expect(await answer(['delete', 'd/x/y.txt'])).toEqual([{ ok: true, deleted: 'file' }]);
      expect(existsSync(join(SESSION, 'd', 'x', 'y.txt'))).toBe(false);
      expect(await answer(['delete', 'd'])).toEqual([{ ok: true, deleted: 'folder' }]);
      expect(existsSync(join(SESSION, 'd'))).toBe(false);
      expect(await answer(['delete', 'link'])).toEqual([{ ok: true, deleted: 'link' }]);
      expect(readdirSync(SESSION)).toEqual([]);
      expect(await answer(['delete', 'link'])).toEqual([{ error: expect.objectContaining({ status: 404, code: 'not_found' }) }]);
    });

    it('refuses more than FILE_MAX_BYTES, announced or streamed, keeping the old file and no temp file', async () => {
      const old = randomBytes(100);
      await put('f.bin', old);
      const announced = await put('f.bin', randomBytes(2000), { maxBytes: 1000, declared: 2000 });
      expect(announced).toEqual([{ error: { status: 413, code: 'file_too_large', detail: expect.stringMatching(/FILE_MAX_BYTES.*1000/) } }]);
      const streamed = await put('f.bin', randomBytes(5 * MiB), { maxBytes: 1000 });
      expect(streamed).toEqual([{ ready: true, used: 0 }, { error: expect.objectContaining({ status: 413, code: 'file_too_large' }) }]);
      expect((await get('f.bin')).body).toEqual(old);
      expect(scratchLeft()).toEqual([]);
    });

    it('refuses what would take the session over SESSION_FILES_MAX_BYTES; a replaced file does not count twice', async () => {
      const old = randomBytes(600);
      await put('a.bin', old, { quota: 1000 });
      const announced = await put('b.bin', randomBytes(500), { quota: 1000, declared: 500 });
      expect(announced).toEqual([{ error: { status: 413, code: 'quota_exceeded', detail: expect.stringMatching(/SESSION_FILES_MAX_BYTES.*1000.*600/) } }]);
      const streamed = await put('b.bin', randomBytes(500), { quota: 1000 });
      expect(streamed).toEqual([{ ready: true, used: 600 }, { error: expect.objectContaining({ status: 413, code: 'quota_exceeded' }) }]);
      const overOld = await put('a.bin', randomBytes(1200), { quota: 1000 });
      expect(overOld).toEqual([{ ready: true, used: 0 }, { error: expect.objectContaining({ status: 413, code: 'quota_exceeded' }) }]);
      expect((await get('a.bin')).body).toEqual(old);
      expect(existsSync(join(SESSION, 'b.bin'))).toBe(false);
      expect(scratchLeft()).toEqual([]);

      const [ready, written] = await put('a.bin', randomBytes(900), { quota: 1000 });
      expect(ready).toEqual({ ready: true, used: 0 });
      expect(written).toMatchObject({ ok: true, size: 900, created: false });
    });

    it('leaves nothing behind when stopped with SIGTERM in the middle of an upload', async () => {
      const helper = Helper.start(['put', 'cut.bin', ...limitArgs({})]);
      expect(await helper.lines(1)).toEqual([{ ready: true, used: 0 }]);
      await helper.send(randomBytes(MiB));
      helper.signal('SIGTERM');
      expect((await helper.finish()).code).toBe(143);
      expect(readdirSync(SESSION)).toEqual([]);
    });

    it('answers reads of a missing session folder as empty, and refuses writes to it', async () => {
      const missing = join(TENANT, 's-missing');
      expect(await answer(['put', 'a.txt', ...limitArgs({})], Buffer.from('a'), missing)).toEqual([{ error: expect.objectContaining({ status: 500, code: 'session_missing' }) }]);
      expect(await answer(['put-tar', '', ...limitArgs({})], makeTar([{ name: 'a' }]), missing)).toEqual([{ error: expect.objectContaining({ status: 500 }) }]);
      expect(await answer(['get', 'a.txt'], undefined, missing)).toEqual([{ error: expect.objectContaining({ status: 404 }) }]);
      expect(await answer(['get-tar', ''], undefined, missing)).toEqual([{ error: expect.objectContaining({ status: 404 }) }]);
      expect(await answer(['delete', 'a.txt'], undefined, missing)).toEqual([{ error: expect.objectContaining({ status: 404 }) }]);
      expect(await answer(['list'], undefined, missing)).toEqual([{ files: [], next: null }]);
      expect(await answer(['usage'], undefined, missing)).toEqual([{ bytes: 0, files: 0 }]);
      expect(existsSync(missing)).toBe(false);
    });

    it('checks paths again: no way up, no absolute path, no empty or dot names', async () => {
      for (const path of ['../s-2/secret.txt', '/etc/passwd', 'a//b', 'a/./b', '..', 'a\\b', 'a\nb', '']) {
        expect(await answer(['get', path])).toEqual([{ error: expect.objectContaining({ status: 400, code: 'bad_path' }) }]);
        expect(await put(path, Buffer.from('x'))).toEqual([{ error: expect.objectContaining({ status: 400, code: 'bad_path' }) }]);
      }
      expect(await answer(['list', '--prefix', '../'])).toEqual([{ error: expect.objectContaining({ status: 400 }) }]);
      expect(await answer(['get-tar', '..'])).toEqual([{ error: expect.objectContaining({ status: 400 }) }]);
      expect(readdirSync(SESSION)).toEqual([]);
    });
  });

  describe('against what kernel code plants', () => {
    it('neither reads nor writes through a link to /etc/passwd, and replaces a link named like the file put', async () => {
      kernel('os.symlink("/etc/passwd", "passwd")\nos.symlink("/etc", "etc")');
      expect(await answer(['get', 'passwd'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      expect(await answer(['get', 'etc/passwd'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link', detail: expect.stringContaining('"etc"') }) }]);
      expect(await put('etc/kf-planted.txt', Buffer.from('planted'))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      expect(existsSync('/etc/kf-planted.txt')).toBe(false);

      expect((await put('passwd', Buffer.from('mine')))[1]).toMatchObject({ ok: true, size: 4 });
      expect(lstatSync(join(SESSION, 'passwd')).isFile()).toBe(true);
      expect(readFileSync(join(SESSION, 'passwd'), 'utf8')).toBe('mine');
    });

    it("is no way into another session's folder, through a link absolute or relative", async () => {
      kernel(`os.symlink(${py(OTHER)}, "other")\nos.symlink("../s-2", "rel")\nos.mkdir("mine")\nos.symlink(${py(join(OTHER, 'secret.txt'))}, "mine/notes.txt")`);
      for (const link of ['other', 'rel']) {
        expect(await answer(['get', `${link}/secret.txt`])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
        expect(await answer(['get', `${link}/sub/secret.txt`])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
        expect(await put(`${link}/planted.txt`, Buffer.from('x'))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
        expect(await put(`${link}/sub/planted.txt`, Buffer.from('x'))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
        expect(await answer(['delete', `${link}/secret.txt`])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
        expect(await answer(['get-tar', link])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
        expect(await putTar(link, makeTar([{ name: 'planted.txt', data: 'x' }]))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      }
      expect(await answer(['get', 'mine/notes.txt'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      expect((await answer(['list']))[0].files).toEqual([]);
      expect(await answer(['usage'])).toEqual([{ bytes: 0, files: 0 }]);

      expect((await put('mine/notes.txt', Buffer.from('notes')))[1]).toMatchObject({ ok: true });
      expect(lstatSync(join(SESSION, 'mine', 'notes.txt')).isFile()).toBe(true);
      expect(await answer(['delete', 'other'])).toEqual([{ ok: true, deleted: 'link' }]);
      expect(await answer(['delete', 'rel'])).toEqual([{ ok: true, deleted: 'link' }]);
    });

    it("does not read the worker's own file through a link", async () => {
      kernel(`os.symlink(${py(WORKER_FILE)}, "w")\nos.mkdir("d")\nos.symlink(${py(BASE)}, "d/base")`);
      expect(await answer(['get', 'w'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      expect(await answer(['get', 'd/base/worker-secret'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      expect(await put('d/base/worker-secret', Buffer.from('x'))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      expect(readTar((await download(['get-tar', ''])).body)).toEqual([{ name: 'd', kind: 'dir' }]);
    });

    it('refuses a FIFO or a socket at once instead of waiting on it', async () => {
      kernel('os.mkfifo("pipe")\nsocket.socket(socket.AF_UNIX).bind("sock")');
      const started = Date.now();
      expect(await answer(['get', 'pipe'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'not_a_file' }) }]);
      expect(await answer(['get', 'sock'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'not_a_file' }) }]);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(readTar((await download(['get-tar', ''])).body)).toEqual([]);
      expect((await put('pipe', Buffer.from('now a file')))[1]).toMatchObject({ ok: true });
      expect(lstatSync(join(SESSION, 'pipe')).isFile()).toBe(true);
    });

    it('may not read what the kernel closed to itself', async () => {
      kernel('open("locked", "w").write("x")\nos.chmod("locked", 0)\nos.mkdir("shut")\nos.chmod("shut", 0)');
      expect(await answer(['get', 'locked'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'permission_denied' }) }]);
      expect(await put('shut/x', Buffer.from('x'))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'permission_denied' }) }]);
      expect((await answer(['list']))[0].files.map((file: Message) => file.path)).toEqual(['locked']);
      kernel('os.mkdir("tree")\nos.mkdir("tree/shut")\nos.chmod("tree/shut", 0)');
      expect(await answer(['delete', 'tree'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'permission_denied' }) }]);
      kernel('os.chmod("shut", 0o700)\nos.chmod("tree/shut", 0o700)'); // so that the next test can clear the folder without root
    });

    // A link to the other session's folder, which the kernel's uid may not enter anyway, and one to
    // a folder it may write to: only the helper's own design keeps the upload out of that one.
    it.each([
      ["another session's folder", OTHER],
      ["the kernel's own /tmp", KERNEL_TMP],
    ])("keeps a large upload's bytes inside when its folder is swapped mid-stream for a link to %s", async (_, target) => {
      await put('up/seed.txt', Buffer.from('seed'));
      const data = randomBytes(64 * MiB);
      const helper = Helper.start(['put', 'up/big.bin', ...limitArgs({ maxBytes: 128 * MiB })]);
      expect(await helper.lines(1)).toEqual([{ ready: true, used: 4 }]);
      await helper.send(data.subarray(0, 16 * MiB));
      kernel(`os.rename("up", "up.moved")\nos.symlink(${py(target)}, "up")`);
      await helper.send(data.subarray(16 * MiB));
      const { code, stdout } = await helper.finish();
      expect(code).toBe(0);
      const [, result] = stdout.toString().split('\n').filter(Boolean).map((line) => JSON.parse(line));
      if (result.ok) {
        // The helper kept the folder it had opened: the file is there, wherever the kernel moved it.
        expect(result.sha256).toBe(sha256(data));
        expect(sha256(readFileSync(join(SESSION, 'up.moved', 'big.bin')))).toBe(sha256(data));
      } else {
        expect(result.error.status).toBeGreaterThanOrEqual(400);
      }
      expect(lstatSync(join(SESSION, 'up')).isSymbolicLink()).toBe(true);
      expect(scratchLeft()).toEqual([]);
    });

    it('unpacks an archive of files and folders, replacing files; a link on the way is refused', async () => {
      await put('up/t/a.txt', Buffer.from('old'));
      const archive = makeTar([{ name: 't/a.txt', data: 'A' }, { name: 't/sub/', type: 'dir' }, { name: './t/sub/b.txt', data: 'BB' }, { name: 'empty', type: 'dir' }]);
      expect(await putTar('up', archive)).toEqual([{ ready: true, used: 3 }, { ok: true, path: 'up', files: 2, bytes: 3 }]);
      expect((await get('up/t/a.txt')).body.toString()).toBe('A');
      expect((await get('up/t/sub/b.txt')).body.toString()).toBe('BB');
      expect(statSync(join(SESSION, 'up', 'empty')).isDirectory()).toBe(true);
      expect((await putTar('', makeTar([{ name: 'root.txt', data: 'r' }], true)))[1]).toMatchObject({ ok: true, files: 1 });
      expect((await get('root.txt')).body.toString()).toBe('r');
      expect(scratchLeft()).toEqual([]);

      kernel(`os.symlink(${py(OTHER)}, "up/t/sub/link")\nos.symlink(${py(OTHER)}, "into")`);
      const session = tree(SESSION);
      expect(await putTar('up', makeTar([{ name: 't/sub/link/planted.txt', data: 'x' }]))).toEqual([
        { ready: true, used: 4 },
        { error: expect.objectContaining({ status: 409, code: 'link' }) },
      ]);
      expect(await putTar('into', makeTar([{ name: 'planted.txt', data: 'x' }]))).toEqual([{ error: expect.objectContaining({ status: 409, code: 'link' }) }]);
      expect(await putTar('up/t', makeTar([{ name: 'a.txt', type: 'dir' }]))).toEqual([{ ready: true, used: 4 }, { error: expect.objectContaining({ status: 409, code: 'not_a_folder' }) }]);
      expect(tree(SESSION)).toEqual(session);
    });

    it('refuses a whole archive with a bad member, or over a limit, and changes nothing', async () => {
      await put('keep.txt', Buffer.from('keep'));
      const session = tree(SESSION);
      const hostile: [TarMember, string][] = [
        [{ name: '../x', data: 'x' }, 'bad_archive'],
        [{ name: 'a/../../x', data: 'x' }, 'bad_archive'],
        [{ name: '/abs', data: 'x' }, 'bad_archive'],
        [{ name: `${OTHER}/planted.txt`, data: 'x' }, 'bad_archive'],
        [{ name: 'a\\..\\x', data: 'x' }, 'bad_archive'],
        [{ name: 'é\u0000b', data: 'x' }, 'bad_archive'], // not ASCII: in a PAX record, where a NUL survives
        [{ name: 'a//b', data: 'x' }, 'bad_archive'],
        [{ name: 'link', type: 'symlink', linkname: '/etc/passwd' }, 'bad_archive'],
        [{ name: 'up', type: 'symlink', linkname: OTHER }, 'bad_archive'],
        [{ name: 'hard', type: 'hardlink', linkname: '/etc/passwd' }, 'bad_archive'],
        [{ name: 'hard', type: 'hardlink', linkname: 'good.txt' }, 'bad_archive'],
        [{ name: 'pipe', type: 'fifo' }, 'bad_archive'],
        [{ name: 'dev', type: 'device' }, 'bad_archive'],
        [{ name: 'good.txt', data: 'twice' }, 'bad_archive'],
        [{ name: 'good.txt/x', data: 'inside a file' }, 'bad_archive'],
        [{ name: 'big.bin', data: 'x'.repeat(2000) }, 'file_too_large'],
        [{ name: 'quota.bin', data: 'x'.repeat(995) }, 'quota_exceeded'],
      ];
      for (const [member, code] of hostile) {
        const archive = makeTar([{ name: 'good.txt', data: 'good' }, member]);
        const refused = await putTar('', archive, { maxBytes: 1000, quota: 1000 });
        expect({ member, refused }).toEqual({ member, refused: [{ ready: true, used: 4 }, { error: expect.objectContaining({ status: code === 'bad_archive' ? 400 : 413, code }) }] });
        expect(tree(SESSION)).toEqual(session);
      }
      expect(await putTar('', Buffer.from('not a tar archive at all, not even close'.repeat(20)))).toEqual([{ ready: true, used: 4 }, { error: expect.objectContaining({ status: 400, code: 'bad_archive' }) }]);
      expect(tree(SESSION)).toEqual(session);
    });

    it('packs regular files and folders only, never what a link points at', async () => {
      await put('pkg/a.txt', Buffer.from('a'));
      await put('pkg/sub/b.txt', Buffer.from('b'));
      kernel(
        [
          'os.symlink("/etc/passwd", "pkg/pw")',
          `os.symlink(${py(OTHER)}, "pkg/other")`,
          `os.symlink(${py(WORKER_FILE)}, "pkg/sub/w")`,
          'os.symlink("/etc", "pkg/etc")',
          'os.mkfifo("pkg/pipe")',
          'open("pkg/.kf-upload-left", "w").write("half")',
        ].join('\n'),
      );
      const { head, body } = await download(['get-tar', 'pkg']);
      expect(head).toEqual({ ok: true });
      expect(readTar(body).sort((x, y) => x.name.localeCompare(y.name))).toEqual([
        { name: 'a.txt', kind: 'file', sha256: sha256('a') },
        { name: 'sub', kind: 'dir' },
        { name: 'sub/b.txt', kind: 'file', sha256: sha256('b') },
      ]);
      expect(readTar((await download(['get-tar', ''])).body).map((member) => member.name).sort()).toEqual(['pkg', 'pkg/a.txt', 'pkg/sub', 'pkg/sub/b.txt']);
      expect(await answer(['get-tar', 'pkg/a.txt'])).toEqual([{ error: expect.objectContaining({ status: 409, code: 'not_a_folder' }) }]);
      expect(await answer(['get-tar', 'nothing'])).toEqual([{ error: expect.objectContaining({ status: 404, code: 'not_found' }) }]);
    });
  });
});
