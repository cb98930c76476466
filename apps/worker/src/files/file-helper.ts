import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { FileOpError } from '@kernelfleet/contracts';

/** A control line of python/kernelfleet_files.py: a JSON object, or its handled error. */
export type HelperMessage = Record<string, unknown> & { error?: FileOpError };

/** How much of the helper's stderr is kept for the log when it fails. */
const STDERR_KEPT = 4_096;

/**
 * One run of python/kernelfleet_files.py, the process that does a file operation's I/O inside a
 * session's folder — as the session kernel's uid when there is one, so it can touch nothing the
 * kernel could not (docs/files.md). Its stdout carries JSON control lines and, for reads, the
 * raw bytes after the first line; its stdin takes an upload.
 */
export class FileHelper {
  private buffered = Buffer.alloc(0);
  private readonly stdout: AsyncIterator<Buffer>;
  private stderr = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    this.stdout = (child.stdout as Readable)[Symbol.asyncIterator]();
    child.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-STDERR_KEPT)));
    // An upload the helper stopped reading (a 413 mid-stream) must not crash the worker.
    child.stdin?.on('error', () => undefined);
    // 'exit', not 'close': 'close' waits for stdout to be read to its end, which nobody does
    // once an operation gives up.
    this.exited = once(child, 'exit').then(([code]) => code as number | null, () => null);
  }

  /** Starts `op` on the folder `root`; `uid`: the kernel's (undefined: the worker's own user). */
  static start(python: string, script: string, root: string, args: string[], uid: number | undefined): FileHelper {
    const child = spawn(python, ['-I', '-S', script, root, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8' },
      cwd: '/',
      ...(uid !== undefined ? { uid, gid: uid } : {}),
    });
    return new FileHelper(child);
  }

  /** The next control line; throws when the helper ended without one (its stderr says why). */
  async message(): Promise<HelperMessage> {
    for (;;) {
      const newline = this.buffered.indexOf(10);
      if (newline >= 0) {
        const line = this.buffered.subarray(0, newline).toString('utf8');
        this.buffered = this.buffered.subarray(newline + 1);
        return JSON.parse(line) as HelperMessage;
      }
      const next = await this.stdout.next();
      if (next.done) throw new Error(`the file helper ended without an answer (exit ${await this.exited}): ${this.stderr.trim().split('\n').pop() ?? ''}`);
      this.buffered = Buffer.concat([this.buffered, next.value]);
    }
  }

  /** The raw bytes after the control line read last (a file's, an archive's), as they come. */
  async *bytes(): AsyncIterable<Buffer> {
    if (this.buffered.length) yield this.buffered;
    this.buffered = Buffer.alloc(0);
    for (;;) {
      const next = await this.stdout.next();
      if (next.done) return;
      yield next.value;
    }
  }

  /** Writes upload bytes; resolves once the pipe takes more (false: the helper stopped reading). */
  async write(chunk: Uint8Array): Promise<boolean> {
    const stdin = this.child.stdin!;
    if (stdin.destroyed || !stdin.writable) return false;
    if (stdin.write(chunk)) return true;
    return new Promise((resolve) => {
      const settle = (more: boolean) => {
        stdin.off('drain', drained).off('close', stopped).off('error', stopped);
        resolve(more);
      };
      const drained = () => settle(true);
      const stopped = () => settle(false);
      stdin.on('drain', drained).on('close', stopped).on('error', stopped);
    });
  }

  /** The upload is complete. */
  endInput(): void {
    this.child.stdin?.end();
  }

  /** Gives up: the helper removes what it had written so far (SIGTERM) and ends. */
  async cancel(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
    this.child.stdout?.destroy();
  }

  /** Waits for the helper to end; answers its exit code. */
  exit(): Promise<number | null> {
    return this.exited;
  }

  get errorOutput(): string {
    return this.stderr;
  }
}
