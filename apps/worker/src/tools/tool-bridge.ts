import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { MAX_PENDING_TOOL_CALLS, type ToolAnswer, type ToolCall } from '@kernelfleet/contracts';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore, type ExecutionRecord, type ExecutionRef } from '@kernelfleet/store';
import type { ExecutionOutput } from '../executions/execution-output';
import { WORKER_CONFIG } from '../tokens';

/** A request line from the kernel, at most (the call's JSON arguments included). */
const REQUEST_MAX_BYTES = 8 * 1_048_576;
/** How often calls still waiting look for an answer whose notice was lost (pub/sub drops it while disconnected). */
const ANSWER_POLL_MS = 1_000;
/**
 * How long a call that reached its deadline waits to learn from Redis whether an answer beat
 * it; past that (Redis unreachable) the kernel hears of the timeout anyway, on time.
 */
const END_CHECK_MS = 1_000;

/** Compares two secrets in time independent of where they differ. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `promise`'s value, or `fallback` once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  return Promise.race([promise.catch(() => fallback), late]).finally(() => clearTimeout(timer));
}

/** What the kernel side (python/kernel_site/kernelfleet_tools.py) reads from the request's metadata. */
export interface ToolBridgeMetadata {
  kernelfleet_tools: { socket: string; token: string; tools: string[]; maxPending: number };
}

/** An execution's bridge while its cell runs. */
export interface ToolBridgeSession {
  /** What the execute request carries for the kernel side. */
  metadata: ToolBridgeMetadata;
  /** Ends the calls waiting now (the execution was cancelled); later calls may still come. */
  endWaiting(reason: string): Promise<void>;
  /** Ends what still waits and closes the channel (the cell is over). */
  close(reason: string): Promise<void>;
}

/** The reply line to the kernel for one call. */
type Reply = { ok: true; value: unknown } | { ok: false; error: string; reason?: 'timeout' };

interface WaitingCall {
  call: ToolCall;
  socket: Socket;
  timer: NodeJS.Timeout;
}

/**
 * One execution's end of the tool bridge: a unix socket only the execution's kernel can open
 * (in the kernel's own HOME, owned by its uid, mode 0600; without users of their own, in the
 * worker's sandbox folder) and a random token the kernel learns from the execute request. A call
 * is recorded and emitted (`tool_call`), waits for the client's answer (told over the worker's
 * control channel, and polled), and ends at its deadline or with the execution.
 */
class ExecutionBridge {
  readonly token = randomBytes(24).toString('hex');
  private readonly waiting = new Map<string, WaitingCall>();
  /** Every open connection: a kernel thread may hold one without sending anything. */
  private readonly sockets = new Set<Socket>();
  private readonly poll: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly record: ExecutionRecord,
    readonly socketPath: string,
    private readonly server: Server,
    private readonly store: FleetStore,
    private readonly output: ExecutionOutput,
    private readonly log: Logger,
  ) {
    server.on('connection', (socket) => this.accept(socket));
    this.poll = setInterval(() => void this.pollAnswers(), ANSWER_POLL_MS);
  }

  get ref(): ExecutionRef {
    return this.record.ref;
  }

  /** The client answered `callId` (control message, with the answer when small): hand it to the kernel. */
  async answered(callId: string, answer?: ToolAnswer): Promise<void> {
    const waiting = this.waiting.get(callId);
    if (!waiting) return;
    if (answer) return this.deliver(waiting, answer);
    const stored = await this.store.toolCalls.get(this.ref, callId);
    if (stored?.state === 'answered' && stored.answer) this.deliver(waiting, stored.answer);
  }

  /**
   * Ends every call still waiting (the cell ended, or the execution was cancelled): the kernel
   * hears it at once, and an answer given from now on gets 410.
   */
  async endAll(reason: string): Promise<void> {
    const ending = [...this.waiting.values()];
    for (const waiting of ending) {
      if (this.reply(waiting, { ok: false, error: reason })) {
        this.output.keepStatus({ type: 'tool_result', callId: waiting.call.callId, name: waiting.call.name, ended: true });
      }
    }
    await Promise.all(ending.map((waiting) => this.store.toolCalls.end(this.ref, waiting.call.callId, 'ended').catch(() => undefined)));
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poll);
    await this.endAll(reason);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    rmSync(this.socketPath, { force: true });
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > REQUEST_MAX_BYTES) return void socket.end(`${JSON.stringify({ ok: false, error: 'tool call arguments too large' })}\n`);
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      socket.removeAllListeners('data');
      void this.onRequest(socket, buffered.slice(0, newline));
    });
  }

  private async onRequest(socket: Socket, line: string): Promise<void> {
    const refuse = (error: string) => socket.end(`${JSON.stringify({ ok: false, error })}\n`);
    let request: { token?: unknown; name?: unknown; args?: unknown };
    try {
      request = JSON.parse(line) as typeof request;
    } catch {
      return void refuse('malformed tool call');
    }
    if (typeof request.token !== 'string' || !sameSecret(request.token, this.token)) return void refuse('not this execution’s tool bridge');
    const name = String(request.name);
    if (!this.record.tools.some((t) => t.name === name)) return void refuse(`tool ${JSON.stringify(name)} was not declared for this execution`);
    if (this.closed) return void refuse('the execution is over');
    if (this.waiting.size >= MAX_PENDING_TOOL_CALLS) return void refuse(`more than ${MAX_PENDING_TOOL_CALLS} tool calls at once`);
    const args = request.args && typeof request.args === 'object' && !Array.isArray(request.args) ? (request.args as Record<string, unknown>) : {};
    const timeout = this.record.toolCallTimeoutMs;
    const deadlineAt = Math.min(this.record.deadlineAt, timeout === undefined ? Infinity : Date.now() + timeout);
    const call: ToolCall = { callId: `tc_${randomBytes(10).toString('hex')}`, name, args, deadlineAt };
    const waiting: WaitingCall = { call, socket, timer: setTimeout(() => void this.expire(waiting), Math.max(0, deadlineAt - Date.now())) };
    this.waiting.set(call.callId, waiting);
    this.output.sendPending();
    const status = { type: 'tool_call', callId: call.callId, name };
    if (!(await this.store.toolCalls.open(this.ref, call, status))) {
      this.reply(waiting, { ok: false, error: 'the execution is over' });
      return;
    }
    this.output.keepStatus(status);
  }

  private async expire(waiting: WaitingCall): Promise<void> {
    const { callId, name, deadlineAt } = waiting.call;
    const ended = this.store.toolCalls.end(this.ref, callId, 'timedOut');
    if ((await within(ended, END_CHECK_MS, 'unknown')) === 'answered') return this.answered(callId);
    const seconds = Math.max(1, Math.round((this.record.toolCallTimeoutMs ?? 0) / 1000));
    const ending = deadlineAt >= this.record.deadlineAt ? 'before the execution’s deadline' : `within ${seconds}s (toolCallTimeoutMs)`;
    if (this.reply(waiting, { ok: false, reason: 'timeout', error: `tool ${name} got no answer ${ending}` })) {
      this.output.keepStatus({ type: 'tool_result', callId, name, timedOut: true });
    }
  }

  private deliver(waiting: WaitingCall, answer: ToolAnswer): void {
    if (this.reply(waiting, answer.ok ? { ok: true, value: answer.value } : { ok: false, error: answer.error })) {
      this.output.keepStatus({ type: 'tool_result', callId: waiting.call.callId, name: waiting.call.name, ok: answer.ok });
    }
  }

  /** Answers the kernel's call, once: false when it was answered already (answer, poll and timer may race). */
  private reply(waiting: WaitingCall, reply: Reply): boolean {
    if (!this.waiting.delete(waiting.call.callId)) return false;
    clearTimeout(waiting.timer);
    waiting.socket.end(`${JSON.stringify(reply)}\n`);
    return true;
  }

  private async pollAnswers(): Promise<void> {
    if (!this.store.connected) return;
    for (const callId of [...this.waiting.keys()]) {
      await this.answered(callId).catch((error: unknown) => this.log.debug(`tool answer poll failed: ${error}`));
    }
  }
}

/**
 * The worker's side of the tool bridge (docs/tools.md): for each execution that declares tools,
 * a channel that only its kernel can use, carried to the client through Redis and back.
 */
@Injectable()
export class ToolBridge {
  private readonly logger = new Logger(ToolBridge.name);
  private readonly bridges = new Map<string, ExecutionBridge>();

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly store: FleetStore,
  ) {}

  /**
   * Opens the bridge of an execution that declares tools, on the kernel that runs it (`uid`:
   * the kernel's own, when kernels run as users of their own). Undefined without tools.
   */
  async open(record: ExecutionRecord, uid: number | undefined, output: ExecutionOutput): Promise<ToolBridgeSession | undefined> {
    if (!record.tools.length) return undefined;
    const dir = uid === undefined ? join(this.config.sandbox.dir, 'bridges') : join(this.config.sandbox.dir, 'home', String(uid));
    if (uid === undefined) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const socketPath = join(dir, `kf-tools-${randomBytes(6).toString('hex')}.sock`);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o600);
    if (uid !== undefined) chownSync(socketPath, uid, uid);
    const bridge = new ExecutionBridge(record, socketPath, server, this.store, output, this.logger);
    this.bridges.set(record.ref.executionId, bridge);
    return {
      metadata: { kernelfleet_tools: { socket: socketPath, token: bridge.token, tools: record.tools.map((t) => t.name), maxPending: MAX_PENDING_TOOL_CALLS } },
      endWaiting: (reason: string) => bridge.endAll(reason),
      close: async (reason: string) => {
        this.bridges.delete(record.ref.executionId);
        await bridge.close(reason);
      },
    };
  }

  /** A control message: the client answered a call of an execution running here. */
  answered(executionId: string, callId: string, answer?: ToolAnswer): void {
    void this.bridges.get(executionId)?.answered(callId, answer).catch((error: unknown) => this.logger.warn(`tool answer for ${callId} not delivered: ${error}`));
  }
}
