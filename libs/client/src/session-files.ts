import { KernelfleetConnectionError, KernelfleetError, problemOf } from './errors.js';
import { readFile, syncDown, syncUp, writeFile } from './files.js';
import { abortedBy, RETRIED_STATUSES, retryAfterMs, seg, type HttpTransport } from './http.js';
import type {
  SessionFileCallOptions,
  SessionFileCalls,
  SessionFileData,
  SessionFileListOptions,
  SessionFileWritten,
  SessionFolderDownloaded,
} from './session-file-types.js';
import type { FileEntry, FileList, FileWritten, TarWritten } from './types.js';

/** Where the api is, for the uploads HttpTransport cannot send (it sends JSON bodies only). */
export interface SessionFilesConnection {
  baseUrl: string;
  apiKey: string;
  fetch: typeof fetch;
}

const MAX_PATH_BYTES = 1024;

/**
 * Why `path` is not a session file path, or undefined when it is one: relative,
 * `/`-separated, no empty, `.` or `..` segment, at most 1024 bytes of UTF-8. The api is the
 * authority; this check only keeps a request that would be refused from being sent.
 */
export function sessionFilePathProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  try {
    encodeURIComponent(path);
  } catch {
    return 'is not valid Unicode';
  }
  if (new TextEncoder().encode(path).length > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  if (path.startsWith('/')) return 'is absolute (paths are relative to the session’s folder)';
  if (path.includes('\u0000')) return 'holds a NUL character';
  const bad = path.split('/').find((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad === '') return 'has an empty segment (a doubled or trailing "/")';
  if (bad !== undefined) return `has a "${bad}" segment`;
  return undefined;
}

/**
 * A session's files (`client.files`): the folder the session's Python code runs in. Every call
 * takes its turn in the session's lane, after the executions submitted before it, so it may wait
 * while the session runs code: a file written before an execution is submitted is there when it
 * runs. All calls are safe to repeat and are retried as GETs are (see *Retries and resume* in
 * docs/client.md), except an upload from a ReadableStream once part of it has been sent. Refusals
 * throw KernelfleetError: 404 no such file, 409 the path goes through a link or a file is where a
 * folder should be, 413 the file or the session's space is too large (its `detail` says which).
 * A path the api would refuse (see sessionFilePathProblem) throws a TypeError before anything is
 * sent. `syncUp`, `syncDown`, `readFile` and `writeFile` use the local file system: Node only.
 */
export class SessionFiles implements SessionFileCalls {
  private readonly base: string;

  constructor(
    private readonly transport: HttpTransport,
    private readonly connection: SessionFilesConnection,
  ) {
    this.base = connection.baseUrl.replace(/\/+$/, '');
  }

  /** Creates or replaces the file at `path` (and the folders above it). */
  async write(sessionId: string, path: string, data: SessionFileData, opts: SessionFileCallOptions = {}): Promise<SessionFileWritten> {
    const res = await this.put(`${filePath(sessionId, path)}${query({ timeoutMs: opts.timeoutMs })}`, data, 'application/octet-stream', opts.signal);
    const stored = (await res.json()) as FileWritten;
    return { ...stored, created: res.status === 201 };
  }

  /** The file's bytes. */
  async read(sessionId: string, path: string, opts: SessionFileCallOptions = {}): Promise<Uint8Array> {
    return new Uint8Array(await (await this.get(filePath(sessionId, path), {}, opts)).arrayBuffer());
  }

  /** The file's content as UTF-8 text. */
  async readText(sessionId: string, path: string, opts: SessionFileCallOptions = {}): Promise<string> {
    return (await this.get(filePath(sessionId, path), {}, opts)).text();
  }

  /** The file's bytes as they arrive (the call resolves once the api has answered). */
  async readStream(sessionId: string, path: string, opts: SessionFileCallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return bodyOf(await this.get(filePath(sessionId, path), {}, opts));
  }

  /** One page of the session's files, in path order. */
  list(sessionId: string, opts: SessionFileListOptions = {}): Promise<FileList> {
    const { prefix, cursor, limit, timeoutMs, signal } = opts;
    return this.transport.json('GET', `/v1/sessions/${seg(sessionId)}/files${query({ prefix, cursor, limit, timeoutMs })}`, { idempotent: true, signal });
  }

  /** Every file of the session (under `prefix`), page after page. */
  async *listAll(sessionId: string, opts: Omit<SessionFileListOptions, 'cursor'> = {}): AsyncGenerator<FileEntry> {
    let cursor: string | undefined;
    do {
      const page = await this.list(sessionId, { ...opts, cursor });
      yield* page.files;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /** Deletes the file, or the folder and everything in it: true when removed, false when there was none. */
  async remove(sessionId: string, path: string, opts: SessionFileCallOptions = {}): Promise<boolean> {
    try {
      await this.transport.request('DELETE', `${filePath(sessionId, path)}${query({ timeoutMs: opts.timeoutMs })}`, { idempotent: true, signal: opts.signal });
      return true;
    } catch (error) {
      if (error instanceof KernelfleetError && error.status === 404) return false;
      throw error;
    }
  }

  /**
   * Extracts a tar archive (regular files and folders only) under the folder `dir` (`''` is the
   * session's folder), creating what is missing and replacing files of the same path.
   */
  async uploadTar(sessionId: string, dir: string, tar: Uint8Array | Blob | ReadableStream<Uint8Array>, opts: SessionFileCallOptions = {}): Promise<TarWritten> {
    const path = `${folderPath(sessionId, dir)}${query({ format: 'tar', timeoutMs: opts.timeoutMs })}`;
    return (await this.put(path, tar, 'application/x-tar', opts.signal)).json() as Promise<TarWritten>;
  }

  /** The folder `dir` (`''` is the session's folder) as a tar stream. */
  async downloadTar(sessionId: string, dir: string, opts: SessionFileCallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return bodyOf(await this.get(folderPath(sessionId, dir), { format: 'tar' }, opts));
  }

  /**
   * Node only. Uploads the local folder's files and folders under `remoteDir` in one request,
   * packed as a tar archive as it is sent (files are read as they go, never whole). Links and
   * other special files are skipped. Nothing is deleted in the session.
   */
  syncUp(sessionId: string, localDir: string, remoteDir = '', opts: SessionFileCallOptions = {}): Promise<TarWritten> {
    return syncUp(this, sessionId, localDir, remoteDir, opts);
  }

  /**
   * Node only. Downloads the session's folder `remoteDir` and extracts it into `localDir`
   * (created when missing), streamed, replacing files of the same path; nothing local is
   * deleted. A member with an absolute path or `..`, a link in the archive, or a local link in
   * the way is refused with a TarError: nothing is written outside `localDir`.
   */
  syncDown(sessionId: string, remoteDir: string, localDir: string, opts: SessionFileCallOptions = {}): Promise<SessionFolderDownloaded> {
    return syncDown(this, sessionId, remoteDir, localDir, opts);
  }

  /** Node only. Writes the session's file `path` to the local file `localPath`, streamed. */
  readFile(sessionId: string, path: string, localPath: string, opts: SessionFileCallOptions = {}): Promise<void> {
    return readFile(this, sessionId, path, localPath, opts);
  }

  /** Node only. Uploads the local file `localPath` to the session's `path`, streamed. */
  writeFile(sessionId: string, path: string, localPath: string, opts: SessionFileCallOptions = {}): Promise<SessionFileWritten> {
    return writeFile(this, sessionId, path, localPath, opts);
  }

  private get(path: string, params: { format?: 'tar' }, opts: SessionFileCallOptions): Promise<Response> {
    return this.transport.request('GET', `${path}${query({ ...params, timeoutMs: opts.timeoutMs })}`, { idempotent: true, signal: opts.signal });
  }

  /**
   * A PUT with a raw body, under the transport's retry rules (http.ts), a PUT being idempotent:
   * network errors, 429, 502, 503, 504 and a 409 with Retry-After are retried, with one
   * exception: a stream that has started going cannot be sent again.
   */
  private async put(path: string, data: SessionFileData, contentType: string, signal?: AbortSignal): Promise<Response> {
    const body = new OutgoingBody(data);
    const outage = this.transport.outage(`PUT ${path}`);
    try {
      for (;;) {
        let res: Response;
        try {
          res = await this.connection.fetch(`${this.base}${path}`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${this.connection.apiKey}`, 'content-type': contentType },
            body: body.forAttempt(),
            signal,
            ...(body.isStream ? { duplex: 'half' } : {}),
          } as RequestInit);
        } catch (error) {
          if (body.failure !== undefined) throw body.failure;
          if (abortedBy(signal, error)) throw error;
          if (!body.replayable) {
            throw new KernelfleetConnectionError(`PUT ${path} failed once its body had started going (a stream is not sent again): ${(error as Error)?.message ?? error}`, { cause: error });
          }
          await outage.failed(error, undefined, signal);
          continue;
        }
        if (res.ok) return res;
        const problem = new KernelfleetError(await problemOf(res));
        const retried = RETRIED_STATUSES.has(res.status) || (res.status === 409 && res.headers.has('retry-after'));
        if (!retried || !body.replayable) throw problem;
        await outage.failed(problem, retryAfterMs(res.headers.get('retry-after')), signal);
      }
    } catch (error) {
      body.abandon(error);
      throw error;
    }
  }
}

/**
 * A PUT's body, one per attempt. Bytes (a string, a buffer, a Blob) can go again as they are; a
 * stream is read once, through a stream of its own per attempt, so an attempt that failed before
 * reading any of it leaves it whole for the next.
 */
class OutgoingBody {
  readonly isStream: boolean;
  /** What the caller's stream failed with, reported instead of fetch's own "fetch failed". */
  failure: unknown;
  private started = false;
  private reader?: ReadableStreamDefaultReader<Uint8Array>;

  constructor(private readonly data: SessionFileData) {
    this.isStream = typeof (data as ReadableStream).getReader === 'function';
  }

  get replayable(): boolean {
    return !this.isStream || !this.started;
  }

  forAttempt(): BodyInit {
    if (!this.isStream) return this.data as BodyInit;
    const source = this.data as ReadableStream<Uint8Array>;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          this.started = true;
          this.reader ??= source.getReader();
          try {
            const { done, value } = await this.reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } catch (error) {
            this.failure = error;
            controller.error(error);
          }
        },
      },
      // No read ahead: the caller's stream is touched only when fetch asks for bytes.
      { highWaterMark: 0 },
    );
  }

  /** Lets go of the caller's stream after a failed upload. */
  abandon(reason: unknown): void {
    if (!this.isStream) return;
    const source = this.data as ReadableStream<Uint8Array>;
    void (this.reader ? this.reader.cancel(reason) : source.cancel(reason)).catch(() => undefined);
  }
}

function checkedPath(path: string): string {
  const problem = sessionFilePathProblem(path);
  if (problem !== undefined) throw new TypeError(`files: "${path}" is not a session file path: it ${problem}`);
  return path.split('/').map(encodeURIComponent).join('/');
}

function filePath(sessionId: string, path: string): string {
  return `/v1/sessions/${seg(sessionId)}/files/${checkedPath(path)}`;
}

/** A folder's route; `''` is the session's folder itself. */
function folderPath(sessionId: string, dir: string): string {
  return `/v1/sessions/${seg(sessionId)}/files${dir === '' ? '' : `/${checkedPath(dir)}`}`;
}

function query(params: Record<string, string | number | undefined>): string {
  const pairs = Object.entries(params).filter((pair): pair is [string, string | number] => pair[1] !== undefined);
  return pairs.length ? `?${pairs.map(([key, value]) => `${key}=${encodeURIComponent(value)}`).join('&')}` : '';
}

function bodyOf(res: Response): ReadableStream<Uint8Array> {
  // A 200 always has a body; an empty file's is an empty stream.
  return res.body ?? new Response(new Uint8Array(0)).body!;
}
