import { mkdir } from 'node:fs/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FileEntry, FileOpError, FileOpOutcome, FileOpRequest } from '@kernelfleet/contracts';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore, TransferAbortedError, TransferGoneError, TransferIdleError, type ExecutionRecord } from '@kernelfleet/store';
import { logFields } from '@kernelfleet/telemetry';
import { fileHelperScript } from '../kernels/session-folders';
import { WORKER_CONFIG } from '../tokens';
import { FileHelper, type HelperMessage } from './file-helper';

/** Where a file operation works: the session's folder, and the uid of the kernel that owns it. */
export interface FileOpTarget {
  folder: string;
  /** Undefined when kernels run as the worker's own user. */
  uid?: number;
}

/**
 * Does the work of the session's file operations (docs/files.md) on this worker: each runs
 * python/kernelfleet_files.py in the session's folder as the kernel's uid, and its bytes travel
 * to or from the api through Redis (FileTransfers), a bounded window at a time.
 *
 * Failures that belong to the operation (a missing file, a link in the path, a quota) are its
 * outcome (`error`), never thrown; a transfer the api gave up ends the operation with an error.
 */
@Injectable()
export class SessionFileOps {
  private readonly logger = new Logger(SessionFileOps.name);
  private readonly script = fileHelperScript();

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly store: FleetStore,
  ) {}

  /**
   * Runs the operation of `record` in `target` (null: the session has no folder on this worker,
   * so there is nothing to read). `stillWanted` turns false once the operation was cancelled, its
   * session disposed, or its deadline passed.
   */
  async perform(record: ExecutionRecord, target: FileOpTarget | null, stillWanted: () => boolean): Promise<FileOpOutcome> {
    const op = record.fileOp!;
    const base = { op: op.op, path: op.path };
    try {
      switch (op.op) {
        case 'put':
        case 'put-tar':
          return { ...base, ...(await this.upload(record, op, target!, stillWanted)) };
        case 'get':
        case 'get-tar':
          return { ...base, ...(await this.download(record, op, target, stillWanted)) };
        case 'list':
          return { ...base, ...(await this.list(op, target)) };
        case 'delete':
          return { ...base, ...(await this.remove(op, target)) };
      }
    } catch (error) {
      this.logger.error(logFields(`file operation ${op.op} ${op.path} failed: ${(error as Error).message ?? error}`, { ...record.ref }));
      return { ...base, error: { status: 500, code: 'internal', detail: `the worker could not ${op.op} ${op.path || 'the folder'}: ${(error as Error).message}` } };
    }
  }

  private async upload(record: ExecutionRecord, op: FileOpRequest, target: FileOpTarget, stillWanted: () => boolean): Promise<Partial<FileOpOutcome>> {
    if (target.uid === undefined) await mkdir(target.folder, { recursive: true });
    const { maxBytes, sessionMaxBytes } = this.config.files;
    const limits = ['--max-bytes', String(maxBytes), '--quota', String(sessionMaxBytes)];
    if (op.declaredBytes !== undefined) limits.push('--declared', String(op.declaredBytes));
    const helper = this.helper(target, op.op === 'put' ? ['put', op.path, ...limits] : ['put-tar', op.path, ...limits]);
    const receiver = this.store.transfers.receiver(record.ref);
    try {
      const ready = await helper.message();
      if (ready.error) {
        await receiver.abort(ready.error.detail);
        return { error: ready.error };
      }
      await receiver.ready();
      const wanted = async () => stillWanted();
      try {
        // The helper stops reading when the upload passes a limit: its answer says which.
        for await (const chunk of receiver.chunks(wanted)) {
          if (!(await helper.write(chunk))) break;
        }
      } catch (error) {
        await helper.cancel();
        return { error: interrupted(error) };
      }
      if (!stillWanted()) {
        await helper.cancel();
        return { error: { status: 503, code: 'interrupted', detail: 'the upload was cut short: the operation was cancelled or ran out of time' } };
      }
      helper.endInput();
      const done = await helper.message();
      if (done.error) {
        // Over a limit mid-stream: the api stops sending and answers the error.
        await receiver.abort(done.error.detail);
        return { error: done.error };
      }
      return op.op === 'put'
        ? { written: { path: op.path, size: done.size as number, sha256: done.sha256 as string, created: done.created as boolean } }
        : { tar: { path: op.path, files: done.files as number, bytes: done.bytes as number } };
    } finally {
      await helper.cancel();
      await receiver.close();
    }
  }

  private async download(record: ExecutionRecord, op: FileOpRequest, target: FileOpTarget | null, stillWanted: () => boolean): Promise<Partial<FileOpOutcome>> {
    const sender = this.store.transfers.sender(record.ref);
    if (!target) {
      const error = noFiles(op);
      await sender.abort(error.detail);
      await sender.close();
      return { error };
    }
    const helper = this.helper(target, op.op === 'get' ? ['get', op.path] : ['get-tar', op.path]);
    try {
      const head = await helper.message();
      if (head.error) {
        await sender.abort(head.error.detail);
        return { error: head.error };
      }
      await sender.meta(op.op === 'get' ? { size: head.size } : {});
      const { bytes } = await sender.send(helper.bytes(), async () => stillWanted());
      const exit = await helper.exit();
      if (exit !== 0) throw new Error(`the file helper ended with ${exit}: ${helper.errorOutput.trim().split('\n').pop() ?? ''}`);
      return { bytes };
    } catch (error) {
      if (isTransferEnd(error)) return { error: interrupted(error) };
      await sender.abort((error as Error).message ?? String(error)).catch(() => undefined);
      throw error;
    } finally {
      await helper.cancel();
      await sender.close();
    }
  }

  private async list(op: FileOpRequest, target: FileOpTarget | null): Promise<Partial<FileOpOutcome>> {
    if (!target) return { list: { files: [], nextCursor: null } };
    const args = ['list', '--prefix', op.prefix ?? '', '--after', op.cursor ?? '', '--limit', String(op.limit)];
    const answer = await this.once(target, args);
    if (answer.error) return { error: answer.error };
    return { list: { files: answer.files as FileEntry[], nextCursor: (answer.next as string | null) ?? null } };
  }

  private async remove(op: FileOpRequest, target: FileOpTarget | null): Promise<Partial<FileOpOutcome>> {
    if (!target) return { error: noFiles(op) };
    const answer = await this.once(target, ['delete', op.path]);
    return answer.error ? { error: answer.error } : {};
  }

  /** Runs an operation that answers one line and ends. */
  private async once(target: FileOpTarget, args: string[]): Promise<HelperMessage> {
    const helper = this.helper(target, args);
    try {
      return await helper.message();
    } finally {
      await helper.cancel();
    }
  }

  private helper(target: FileOpTarget, args: string[]): FileHelper {
    return FileHelper.start(this.config.jupyter.python, this.script, target.folder, args, target.uid);
  }
}

/** A read of a session that has no folder on any worker (no kernel yet, or its state was lost). */
function noFiles(op: FileOpRequest): FileOpError {
  return { status: 404, code: 'not_found', detail: `${op.path || 'the session folder'} does not exist: the session has no files` };
}

function isTransferEnd(error: unknown): boolean {
  return error instanceof TransferAbortedError || error instanceof TransferIdleError || error instanceof TransferGoneError;
}

/** The api went away (or gave up) in the middle of a transfer. */
function interrupted(error: unknown): FileOpError {
  const reason = error instanceof TransferIdleError ? 'nothing arrived for too long' : (error as Error).message;
  return { status: 503, code: 'interrupted', detail: `the transfer was cut short (${reason}); nothing was changed` };
}
