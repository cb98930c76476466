import { seg, type HttpTransport } from './http.js';
import type { SessionFileCallOptions, SessionFileCalls, SessionFileWritten, SessionFolderDownloaded } from './session-file-types.js';
import type { TarWritten } from './types.js';
import { readTar, streamOf, TarError, writeTar, type TarEntry } from './tar.js';

// The client's helpers that use the local file system. Node only: they load node:* modules when
// called, so the rest of the client (which imports this file) runs in a browser too.

/**
 * Writes an execution's artifact (its full output, once it overflowed the result) to `path`,
 * streamed: the artifact never sits in memory whole. Node only; the rest of the client runs in
 * a browser too.
 */
export async function downloadArtifact(transport: HttpTransport, executionId: string, path: string, signal?: AbortSignal): Promise<void> {
  const [{ createWriteStream }, { Readable }, { pipeline }] = await Promise.all([
    import('node:fs'),
    import('node:stream'),
    import('node:stream/promises'),
  ]);
  const res = await transport.request('GET', `/v1/executions/${seg(executionId)}/artifact`, { idempotent: true, signal });
  if (!res.body) throw new Error(`the artifact of ${executionId} came without a body`);
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(path), { signal });
}

/** SessionFiles.readFile: the session's file to a local file, streamed. */
export async function readFile(files: SessionFileCalls, sessionId: string, path: string, localPath: string, opts: SessionFileCallOptions): Promise<void> {
  const [{ createWriteStream }, { Readable }, { pipeline }] = await Promise.all([import('node:fs'), import('node:stream'), import('node:stream/promises')]);
  const stream = await files.readStream(sessionId, path, opts);
  await pipeline(Readable.fromWeb(stream as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(localPath), { signal: opts.signal });
}

/** SessionFiles.writeFile: a local file to the session's file, streamed. */
export async function writeFile(files: SessionFileCalls, sessionId: string, path: string, localPath: string, opts: SessionFileCallOptions): Promise<SessionFileWritten> {
  const [{ createReadStream }, { stat }, { Readable }] = await Promise.all([import('node:fs'), import('node:fs/promises'), import('node:stream')]);
  if (!(await stat(localPath)).isFile()) throw new TypeError(`${localPath} is not a file`);
  const stream = Readable.toWeb(createReadStream(localPath)) as unknown as ReadableStream<Uint8Array>;
  return files.write(sessionId, path, stream, opts);
}

/** SessionFiles.syncUp: the local folder packed as a tar archive while it is uploaded. */
export async function syncUp(files: SessionFileCalls, sessionId: string, localDir: string, remoteDir: string, opts: SessionFileCallOptions): Promise<TarWritten> {
  const { stat } = await import('node:fs/promises');
  if (!(await stat(localDir)).isDirectory()) throw new TypeError(`${localDir} is not a folder`);
  return files.uploadTar(sessionId, remoteDir, streamOf(writeTar(await folderEntries(localDir))), opts);
}

/**
 * The files and folders under `root` as tar entries, depth first in name order, each file read
 * only when the archive reaches it. Links, sockets and devices are skipped.
 */
async function folderEntries(root: string): Promise<AsyncGenerator<TarEntry>> {
  const [{ createReadStream }, { lstat, readdir }, { join }] = await Promise.all([import('node:fs'), import('node:fs/promises'), import('node:path')]);
  async function* walk(dir: string, prefix: string): AsyncGenerator<TarEntry> {
    const items = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const item of items) {
      const local = join(dir, item.name);
      const path = prefix ? `${prefix}/${item.name}` : item.name;
      if (!item.isDirectory() && !item.isFile()) continue;
      const info = await lstat(local);
      const common = { path, mode: info.mode & 0o777, mtime: Math.floor(info.mtimeMs / 1000) };
      if (item.isDirectory()) {
        yield { type: 'folder', ...common };
        yield* walk(local, path);
      } else {
        // Exactly the size just seen: a file that grows meanwhile fails the archive rather than
        // sending a header that lies; one that shrinks fails it in writeTar.
        const read = async function* () {
          if (info.size > 0) yield* createReadStream(local, { start: 0, end: info.size - 1 });
        };
        yield { type: 'file', ...common, size: info.size, body: read() };
      }
    }
  }
  return walk(root, '');
}

/** SessionFiles.syncDown: the session's folder, downloaded as a tar archive and extracted as it arrives. */
export async function syncDown(files: SessionFileCalls, sessionId: string, remoteDir: string, localDir: string, opts: SessionFileCallOptions): Promise<SessionFolderDownloaded> {
  const [{ constants }, { lstat, mkdir, open }, path, { Readable }, { pipeline }] = await Promise.all([
    import('node:fs'),
    import('node:fs/promises'),
    import('node:path'),
    import('node:stream'),
    import('node:stream/promises'),
  ]);
  const tar = await files.downloadTar(sessionId, remoteDir, opts);
  const root = path.resolve(localDir);
  await mkdir(root, { recursive: true });

  /** The local path of a member, refused when it would land outside `root`. */
  const target = (member: string) => {
    const local = path.resolve(root, ...member.split('/'));
    const inside = path.relative(root, local);
    if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) throw new TarError(`"${member}" would land outside ${localDir}`);
    return local;
  };
  // Folders checked to be real folders (not links) or made here; each one is checked once.
  const folders = new Set<string>([root]);
  const folder = async (local: string) => {
    const chain: string[] = [];
    for (let at = local; !folders.has(at); at = path.dirname(at)) chain.unshift(at);
    for (const at of chain) {
      const found = await lstat(at).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (!found) await mkdir(at);
      else if (!found.isDirectory()) throw new TarError(`${at} is in the way: it is not a folder${found.isSymbolicLink() ? ' but a link, which is not followed' : ''}`);
      folders.add(at);
    }
  };
  // O_NOFOLLOW: a link at a file's place is refused by the system too, not written through.
  const writeFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0);

  let count = 0;
  let bytes = 0;
  for await (const entry of readTar(tar)) {
    const local = target(entry.path);
    if (entry.type === 'folder') {
      await folder(local);
      continue;
    }
    await folder(path.dirname(local));
    const found = await lstat(local).catch(() => undefined);
    if (found && !found.isFile()) throw new TarError(`${local} is in the way: it is not a file${found.isSymbolicLink() ? ' but a link, which is not followed' : ''}`);
    const file = await open(local, writeFlags);
    await pipeline(Readable.from(entry.body), file.createWriteStream(), { signal: opts.signal });
    count += 1;
    bytes += entry.size;
  }
  return { files: count, bytes };
}
