import { KernelfleetError } from './errors.js';
import { ExecutionHandle, type ToolHandlers } from './execution.js';
import { pythonResultOf, resultWithoutRun, type ExecutePythonOptions, type PythonResult } from './execute-python.js';
import { downloadArtifact } from './files.js';
import { HttpTransport, seg, type RetryOptions } from './http.js';
import { defaultFetch } from './node-fetch.js';
import { SessionFiles } from './session-files.js';
import { sessionIdForFolder, workingFolder } from './session-id.js';
import { eventsQuery } from './events.js';
import { TOOL_NAME_PATTERN, type Execution, type ExecutionEventType, type KernelMode, type OwnerDisposal, type Session, type SessionsDisposal, type SubmitAccepted } from './types.js';

export interface KernelfleetClientOptions {
  /** The api, e.g. `http://127.0.0.1:3000` (what `npm start` prints as KERNELFLEET_URL). */
  baseUrl: string;
  /** An API key of the tenant (`Authorization: Bearer …`). */
  apiKey: string;
  /**
   * A fetch to use (a proxy agent, a test double). Default: on Node, requests through Node's
   * own http module (quicker than the global fetch); elsewhere, the global fetch.
   */
  fetch?: typeof fetch;
  retry?: RetryOptions;
  /**
   * A stream silent this long (no event and no keepalive comment, which the api sends every
   * 15 s by default) is taken as dropped and resumed. Default 45 000.
   */
  streamIdleTimeoutMs?: number;
}

/** Options of `execute`: the submit's fields (docs/architecture.md), and the tools' handlers. */
export interface ExecuteOptions {
  timeoutMs?: number;
  /** Absolute deadline, epoch ms. */
  deadlineAt?: number;
  reset?: boolean;
  kernelMode?: KernelMode;
  ownerId?: string;
  retryOnKernelLoss?: boolean;
  /** Declares these tools and answers their calls (docs/tools.md). */
  tools?: ToolHandlers;
  toolCallTimeoutMs?: number;
  /** Makes the submit safe to send again; the client makes one up when not given. */
  idempotencyKey?: string;
  /** The event types the handle's streams carry (`result` always comes); default all of them. */
  events?: readonly ExecutionEventType[];
}

/**
 * kernelfleet's api for a program: run Python in sessions, stream its output, answer its tool
 * calls, and manage sessions. Runs on Node ≥ 20 and in browsers (except the file helpers:
 * `artifactPath` and `downloadArtifact`).
 */
export class KernelfleetClient {
  /**
   * The sessions' files: write, read, list and remove files in the folder a session's code runs
   * in, and move whole folders as tar archives. Each call takes its turn in the session's lane,
   * so a file written before an execution is submitted is there when it runs. `syncUp`,
   * `syncDown`, `readFile` and `writeFile` use the local file system (Node only).
   */
  readonly files: SessionFiles;
  private readonly transport: HttpTransport;
  private readonly idleTimeoutMs: number;

  constructor(options: KernelfleetClientOptions) {
    if (!options.baseUrl) throw new TypeError('KernelfleetClient: baseUrl is required');
    if (!options.apiKey) throw new TypeError('KernelfleetClient: apiKey is required');
    const fetchImpl = options.fetch ?? defaultFetch();
    if (!fetchImpl) throw new TypeError('KernelfleetClient: no fetch (Node ≥ 20 has one; else pass options.fetch)');
    this.transport = new HttpTransport(options.baseUrl, options.apiKey, fetchImpl, options.retry);
    this.files = new SessionFiles(this.transport, { baseUrl: options.baseUrl, apiKey: options.apiKey, fetch: fetchImpl });
    this.idleTimeoutMs = options.streamIdleTimeoutMs ?? 45_000;
  }

  /** Submits code to a session; the handle streams it, waits for it, cancels it. */
  execute(sessionId: string, code: string, opts: ExecuteOptions = {}): Promise<ExecutionHandle> {
    return this.submit(sessionId, code, opts, false);
  }

  /**
   * `streamed`: the submit asks to be answered with the execution's event stream, which the
   * handle's first `events()` reads, so following it costs no second request. An api that
   * answers `202` instead is followed as usual.
   */
  private async submit(sessionId: string, code: string, opts: ExecuteOptions, streamed: boolean): Promise<ExecutionHandle> {
    const { tools, idempotencyKey, events, ...fields } = opts;
    const names = Object.keys(tools ?? {});
    const bad = names.find((name) => !TOOL_NAME_PATTERN.test(name));
    if (bad !== undefined) throw new TypeError(`tools: "${bad}" is not a Python identifier of 1-64 characters`);
    const body = { code, ...fields, ...(names.length ? { tools: names.map((name) => ({ name })) } : {}) };
    // The event types go with a submit answered by the stream; a handle's own streams send them too.
    const query = streamed ? eventsQuery(events) : '';
    const res = await this.transport.request('POST', `/v1/sessions/${seg(sessionId)}/executions${query}`, {
      body,
      headers: { 'idempotency-key': idempotencyKey ?? globalThis.crypto.randomUUID(), ...(streamed ? { accept: 'text/event-stream' } : {}) },
      idempotent: true,
    });
    const handleOpts = { tools, idleTimeoutMs: this.idleTimeoutMs, events };
    const location = res.headers.get('location');
    if (streamed && res.headers.get('content-type')?.startsWith('text/event-stream') && location) {
      const executionId = decodeURIComponent(location.slice(location.lastIndexOf('/') + 1));
      const seq = Number(res.headers.get('execution-seq'));
      return new ExecutionHandle(this.transport, executionId, sessionId, seq, { ...handleOpts, opened: res });
    }
    const accepted = (await res.json()) as SubmitAccepted;
    return new ExecutionHandle(this.transport, accepted.executionId, accepted.sessionId, accepted.seq, handleOpts);
  }

  /**
   * A handle on an execution submitted before (by this process or another), e.g. to resume its
   * stream. Without `tools` it only watches: its tool calls are left to the client that answers them.
   */
  async attach(executionId: string, opts: { tools?: ToolHandlers } = {}): Promise<ExecutionHandle> {
    const execution = await this.getExecution(executionId);
    return new ExecutionHandle(this.transport, execution.executionId, execution.sessionId, execution.seq, { tools: opts.tools, idleTimeoutMs: this.idleTimeoutMs });
  }

  /**
   * The original executor's entry point: runs `code` and resolves to its PythonResult. A
   * cancellation or timeout is a result (`cancelled`, `exitCode` undefined); what is thrown is
   * an api refusal (KernelfleetError) or an api out of reach (KernelfleetConnectionError).
   */
  async executePython(code: string, options: ExecutePythonOptions = {}): Promise<PythonResult> {
    const sessionId = options.sessionId ?? sessionIdForFolder(options.cwd ?? workingFolder() ?? '/');
    const { signal } = options;
    if (signal?.aborted) return resultWithoutRun(sessionId, 'aborted');
    if (options.deadlineMs !== undefined && options.deadlineMs <= Date.now()) return resultWithoutRun(sessionId, 'deadline');
    // Not given the signal: an abort during the submit must still learn the id, to cancel it.
    // Answered with the event stream: one request submits and follows. It carries only what the
    // options read: with none of them, the result alone.
    const events: ExecutionEventType[] = [
      ...(options.onChunk ? (['stdout', 'stderr', 'display'] as const) : []),
      ...(options.emitStatus ? (['status'] as const) : []),
      ...(options.tools ? (['tool_call'] as const) : []),
    ];
    const execution = await this.submit(sessionId, code, {
      events,
      ...(options.deadlineMs !== undefined ? { deadlineAt: options.deadlineMs } : { timeoutMs: options.timeoutMs }),
      reset: options.reset,
      kernelMode: options.kernelMode,
      ownerId: options.kernelOwnerId,
      retryOnKernelLoss: options.retryOnKernelLoss,
      tools: options.tools,
      toolCallTimeoutMs: options.toolCallTimeoutMs,
    }, true);
    // A cancel that fails (the api out of reach) is not the caller's error: the result, or the
    // stream's own failure, says how the execution ended.
    let cancelling: Promise<unknown> | undefined;
    const onAbort = () => (cancelling ??= execution.cancel().catch((error: unknown) => error));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    let final: Execution | undefined;
    try {
      for await (const event of execution.events()) {
        switch (event.type) {
          case 'stdout':
          case 'stderr':
            options.onChunk?.(event.data.text);
            break;
          case 'display':
            if (event.data.type === 'text') options.onChunk?.(event.data.text);
            break;
          case 'status':
            options.emitStatus?.(event.data);
            break;
          case 'result':
            final = event.data;
        }
      }
      await cancelling;
    } catch (error) {
      // The caller gets an error (a callback threw, the stream could not be resumed): the code
      // must not go on running unseen.
      if (!final) await (cancelling ?? execution.cancel().catch(() => undefined));
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (!final) throw new Error(`the stream of execution ${execution.id} ended without its result`);
    const result = pythonResultOf(final, options.emitStatus === undefined);
    if (options.artifactPath && result.artifactId) {
      await downloadArtifact(this.transport, execution.id, options.artifactPath);
      result.artifactPath = options.artifactPath;
    }
    return result;
  }

  getExecution(executionId: string): Promise<Execution> {
    return this.transport.json('GET', `/v1/executions/${seg(executionId)}`, { idempotent: true });
  }

  /** The full output of an execution whose output overflowed (`result.artifactId`), as text. */
  async artifact(executionId: string): Promise<string> {
    return (await this.transport.request('GET', `/v1/executions/${seg(executionId)}/artifact`, { idempotent: true })).text();
  }

  /** Writes the artifact to a file, streamed (Node). */
  downloadArtifact(executionId: string, path: string, signal?: AbortSignal): Promise<void> {
    return downloadArtifact(this.transport, executionId, path, signal);
  }

  /** The session (home worker, kernel, pending executions, owners), or null when there is none. */
  async getSession(sessionId: string): Promise<Session | null> {
    try {
      return await this.transport.json<Session>('GET', `/v1/sessions/${seg(sessionId)}`, { idempotent: true });
    } catch (error) {
      if (error instanceof KernelfleetError && error.status === 404) return null;
      throw error;
    }
  }

  /** Cancels every queued execution of the session (a running one goes on). 404 when there is no such session. */
  cancelPending(sessionId: string): Promise<{ sessionId: string; cancelled: number }> {
    return this.transport.json('POST', `/v1/sessions/${seg(sessionId)}/cancel-pending`, { idempotent: true });
  }

  /** Disposes of the session: queued executions cancelled, a running one ended, the kernel shut down. */
  deleteSession(sessionId: string): Promise<{ sessionId: string; cancelled: number }> {
    return this.transport.json('DELETE', `/v1/sessions/${seg(sessionId)}`, { idempotent: true });
  }

  /**
   * The original's dispose by owner: sessions the owner alone held are disposed of, shared ones
   * only lose it. An owner holding nothing is no error (both lists empty).
   */
  async disposeKernelSessionsByOwner(ownerId: string): Promise<OwnerDisposal> {
    try {
      return await this.transport.json<OwnerDisposal>('DELETE', `/v1/owners/${seg(ownerId)}`, { idempotent: true });
    } catch (error) {
      if (error instanceof KernelfleetError && error.status === 404) return { ownerId, disposed: [], detached: [] };
      throw error;
    }
  }

  /** Disposes of every session of the key's tenant (per-call kernels end with their executions anyway). */
  disposeAllKernelSessions(): Promise<SessionsDisposal> {
    return this.transport.json('DELETE', '/v1/sessions', { idempotent: true });
  }
}
