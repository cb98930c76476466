import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import {
  FILE_LIST_MAX,
  checkListPrefix,
  isTerminal,
  parseFilePath,
  type Execution,
  type FileList,
  type FileOpError,
  type FileOpRequest,
  type FileWritten,
  type TarWritten,
} from '@kernelfleet/contracts';
import type { ApiConfig } from '@kernelfleet/config';
import { FleetStore, newExecutionId, type ExecutionRef } from '@kernelfleet/store';
import { EventFollower } from '../executions/event-follower';
import { checkId } from '../executions/executions.service';
import { admissionRefused } from '../problems/admission-refused';
import { invalid, ProblemException } from '../problems/problem.exception';
import { API_CONFIG } from '../tokens';

/** How long an answer may be waited for past the operation's deadline (its worker ends it by then). */
const WAIT_SLACK_MS = 15_000;

/** The query of a files route, as Express hands it over. */
export type FilesQuery = Record<string, unknown>;

/** What a file route names: the session, and the path still percent-encoded ('' for none). */
export interface FileRoute {
  tenant: string;
  sessionId: string;
  encodedPath: string;
}

/**
 * Session files (docs/files.md), the api's side. Each request becomes a file operation in the
 * session's lane (one store call, as a submit), and waits its turn; the worker holding the
 * session does the I/O and the bytes go through Redis (FileTransfers), a window at a time, so
 * neither side ever holds a whole file. The answer comes from the operation's terminal record.
 */
@Injectable()
export class FilesService {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly store: FleetStore,
    private readonly follower: EventFollower,
  ) {}

  /** `PUT …/files/{path}` (or `?format=tar`): the request's body goes to the file (or is unpacked). */
  async put(route: FileRoute, query: FilesQuery, req: IncomingMessage): Promise<{ status: 200 | 201; body: FileWritten | TarWritten }> {
    const tar = this.isTar(query);
    const path = this.pathOf(route, tar);
    const declared = this.declaredBytes(req, tar);
    const { ref, deadlineAt } = await this.submit(route, query, { op: tar ? 'put-tar' : 'put', path, declaredBytes: declared });
    const sender = this.store.transfers.sender(ref);
    try {
      const stillWanted = this.wanted(ref, req);
      if ((await sender.waitReady(stillWanted)) === 'ready') await sender.send(req, stillWanted);
    } catch {
      // The worker refused (a limit), the client left, the operation ended or Redis went away:
      // the operation's record says which (or that its outcome is unknown), and the worker was
      // told to give up (the sender aborts on every failure but the worker's own).
    } finally {
      await sender.close();
    }
    const file = (await this.outcome(ref, deadlineAt)).file!;
    if (file.written) return { status: file.written.created ? 201 : 200, body: { path: file.written.path, size: file.written.size, sha256: file.written.sha256 } };
    return { status: 200, body: file.tar! };
  }

  /**
   * `GET …/files/{path}` (or `?format=tar`): the file's bytes (an archive of the folder) written
   * to `res` as they come, with Content-Length for a file. Errors before the first byte throw.
   */
  async get(route: FileRoute, query: FilesQuery, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const tar = this.isTar(query);
    const path = this.pathOf(route, tar);
    const { ref, deadlineAt } = await this.submit(route, query, { op: tar ? 'get-tar' : 'get', path });
    const receiver = this.store.transfers.receiver(ref);
    try {
      const stillWanted = this.wanted(ref, req);
      let head: { meta: { size?: number } } | 'gone';
      try {
        head = await receiver.waitMeta<{ size?: number }>(stillWanted);
      } catch {
        head = 'gone'; // the worker gave up (the record says why), or Redis went away
      }
      if (head === 'gone') {
        await this.outcome(ref, deadlineAt); // throws the operation's error
        throw new ProblemException('unavailable', 503, `the file operation on ${path || 'the session folder'} ended without sending the file`);
      }
      res.statusCode = 200;
      res.setHeader('Content-Type', tar ? 'application/x-tar' : 'application/octet-stream');
      if (head.meta.size !== undefined) res.setHeader('Content-Length', String(head.meta.size));
      await receiver.ready();
      for await (const chunk of receiver.chunks(stillWanted)) {
        if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
        if (res.destroyed) break;
      }
      if (res.destroyed) await receiver.abort('the client went away');
      res.end();
    } catch (error) {
      if (!res.headersSent) throw error;
      // Mid-body: the client sees the stream cut short (no Content-Length worth of bytes).
      res.destroy(error as Error);
    } finally {
      await receiver.close();
    }
  }

  /** `DELETE …/files/{path}`: the file, or the folder with everything in it. */
  async remove(route: FileRoute, query: FilesQuery): Promise<void> {
    const path = this.pathOf(route, false);
    const { ref, deadlineAt } = await this.submit(route, query, { op: 'delete', path });
    await this.outcome(ref, deadlineAt);
  }

  /** `GET …/files?prefix=&cursor=&limit=`: one page of the folder's files, sorted by path. */
  async list(route: FileRoute, query: FilesQuery): Promise<FileList> {
    const prefix = this.text(query, 'prefix') ?? '';
    const checked = checkListPrefix(prefix);
    if (!checked.ok) throw invalid([{ field: 'prefix', message: checked.message }]);
    const cursor = this.text(query, 'cursor') ?? '';
    const limit = this.integer(query, 'limit', 1, FILE_LIST_MAX) ?? FILE_LIST_MAX;
    const { ref, deadlineAt } = await this.submit(route, query, { op: 'list', path: '', prefix, cursor, limit });
    return (await this.outcome(ref, deadlineAt)).file!.list!;
  }

  /** Accepts the operation into the session's lane (tenant quotas apply as to a submit). */
  private async submit(route: FileRoute, query: FilesQuery, fileOp: FileOpRequest): Promise<{ ref: ExecutionRef; deadlineAt: number }> {
    checkId('sessionId', route.sessionId);
    const timeoutMs = this.integer(query, 'timeoutMs', 1, this.config.limits.maxTimeoutMs);
    const now = Date.now();
    const submitted = await this.store.submissions.submit(
      {
        tenant: route.tenant,
        sessionId: route.sessionId,
        executionId: newExecutionId(),
        code: '',
        fileOp,
        acceptedAt: now,
        requestedTimeoutMs: timeoutMs,
        defaultTimeoutMs: this.config.limits.fileTimeoutMs,
        kernelMode: 'session',
        reset: false,
        retryOnKernelLoss: false,
      },
      this.config.quotas,
    );
    if (submitted.kind === 'refused') throw admissionRefused(submitted.admission, route.sessionId, { codeBytes: 0, timeoutField: 'timeoutMs' });
    return { ref: submitted.accepted.ref, deadlineAt: submitted.deadlineAt };
  }

  /**
   * The operation's terminal record, once it has one; throws its error as the problem the
   * client gets. Waits no longer than the deadline plus slack (the worker ends it by then).
   */
  private async outcome(ref: ExecutionRef, deadlineAt: number): Promise<Execution> {
    let done: Execution | undefined;
    const timeout = AbortSignal.timeout(Math.max(0, deadlineAt - Date.now()) + WAIT_SLACK_MS);
    await this.follower.follow(ref, 0, (e) => e.type === 'result' && (done = e.data), timeout);
    done ??= (await this.store.executions.get(ref)) ?? undefined;
    if (!done || !isTerminal(done.status)) {
      throw new ProblemException('unavailable', 503, `the file operation ${ref.executionId} did not end in time; its outcome is unknown`);
    }
    const error = done.file?.error;
    if (error) throw problemOf(error, ref);
    return done;
  }

  /** While the client is connected and the operation has not ended (checked once per transfer slice). */
  private wanted(ref: ExecutionRef, req: IncomingMessage): () => Promise<boolean> {
    return async () => {
      if (req.destroyed && !req.complete) return false;
      const execution = await this.store.executions.get(ref);
      return execution !== null && !isTerminal(execution.status);
    };
  }

  private pathOf(route: FileRoute, folderAllowed: boolean): string {
    if (folderAllowed && route.encodedPath === '') return '';
    const parsed = parseFilePath(route.encodedPath);
    if (!parsed.ok) throw invalid([{ field: 'path', message: parsed.message }]);
    return parsed.path;
  }

  /** Content-Length, checked against FILE_MAX_BYTES before anything is accepted (a tar may hold many files). */
  private declaredBytes(req: IncomingMessage, tar: boolean): number | undefined {
    const header = req.headers['content-length'];
    if (header === undefined) return undefined;
    const bytes = Number(header);
    const max = this.config.limits.fileMaxBytes;
    if (!tar && bytes > max) {
      throw new ProblemException('payloadTooLarge', 413, `the file is ${bytes} bytes; the limit (FILE_MAX_BYTES) is ${max}`, {}, { Connection: 'close' });
    }
    return bytes;
  }

  private isTar(query: FilesQuery): boolean {
    const format = this.text(query, 'format');
    if (format !== undefined && format !== 'tar') throw invalid([{ field: 'format', message: 'must be tar (or left out)' }]);
    return format === 'tar';
  }

  private text(query: FilesQuery, name: string): string | undefined {
    const value = query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw invalid([{ field: name, message: 'must be given once' }]);
    return value;
  }

  private integer(query: FilesQuery, name: string, min: number, max: number): number | undefined {
    const raw = this.text(query, name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) throw invalid([{ field: name, message: `must be an integer from ${min} to ${max}` }]);
    return value;
  }
}

const PROBLEM_KINDS = { 400: 'validation', 404: 'notFound', 409: 'conflict', 413: 'payloadTooLarge', 500: 'internal', 503: 'unavailable' } as const;

/** A file operation's error as the problem+json the client gets (`code` names the case). */
function problemOf(error: FileOpError, ref: ExecutionRef): ProblemException {
  const headers: Record<string, string> = error.status === 503 ? { 'Retry-After': '1' } : {};
  // An upload refused before its body was read: the rest of the body is not wanted.
  if (error.status === 413) headers.Connection = 'close';
  return new ProblemException(PROBLEM_KINDS[error.status], error.status, error.detail, { code: error.code, instance: `/v1/executions/${ref.executionId}` }, headers);
}
