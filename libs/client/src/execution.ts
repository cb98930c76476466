import { KernelfleetError } from './errors.js';
import { followEvents } from './events.js';
import { seg, type HttpTransport } from './http.js';
import type { Execution, ExecutionEvent, ExecutionEventType, ToolCall } from './types.js';

/**
 * Answers one tool: gets the call's `args` (the keyword arguments of `tool.<name>(…)`) and
 * returns its value (any JSON; `undefined` is sent as `null`). A handler that throws answers
 * `ok: false` with the error's message, which Python raises as `ToolError`.
 */
export type ToolHandler = (args: Record<string, unknown>, call: ToolCall) => unknown;
export type ToolHandlers = Record<string, ToolHandler>;

type ToolAnswer = { ok: true; value: unknown } | { ok: false; error: string };

/** The api takes an error text of 1–65 536 characters. */
const MAX_ERROR_CHARS = 65_536;

export interface ExecutionHandleOptions {
  tools?: ToolHandlers;
  idleTimeoutMs: number;
  /** The event stream the submit was answered with, read by the first `events()` from the start. */
  opened?: Response;
  /** The event types the streams carry (the submit's `events`); all of them when undefined. */
  events?: readonly ExecutionEventType[];
}

/**
 * One accepted execution. `events()` streams it (every event once, in order, resumed after
 * drops), `result()` waits for its terminal state, `cancel()` cancels it on the server. Calls
 * of declared tools are answered by the handlers given at submit, once each, whichever stream
 * sees them first; a handle given no handlers answers none.
 */
export class ExecutionHandle {
  private readonly answered = new Set<string>();
  /** The submit's own event stream, until the first `events()` takes it. */
  private opened?: Response;
  private final?: Execution;
  private draining?: Promise<Execution>;
  /** Answers that could not be delivered (not those the api refused as too late). */
  readonly toolAnswerErrors: Error[] = [];

  constructor(
    private readonly transport: HttpTransport,
    readonly id: string,
    readonly sessionId: string,
    readonly seq: number,
    private readonly opts: ExecutionHandleOptions,
  ) {
    this.opened = opts.opened;
  }

  /**
   * The execution's events from the first (or after `after`), ending with `result`. Each call
   * opens a stream of its own. Throws KernelfleetError for a refusal (404 once the execution's
   * retention ended), KernelfleetConnectionError when a drop outlasts the retry budget, and the
   * signal's reason when `signal` aborts (the execution goes on: see `cancel`).
   */
  async *events(opts: { after?: number; signal?: AbortSignal } = {}): AsyncGenerator<ExecutionEvent> {
    const after = opts.after ?? 0;
    let opened = this.opened;
    this.opened = undefined;
    // The submit's stream starts at the first event: a follow from elsewhere gives it up.
    if (opened && after !== 0) {
      void opened.body?.cancel().catch(() => undefined);
      opened = undefined;
    }
    const follow = { after, signal: opts.signal, idleTimeoutMs: this.opts.idleTimeoutMs, opened, events: this.opts.events };
    for await (const event of followEvents(this.transport, this.id, follow)) {
      if (event.type === 'tool_call') this.answer(event.data);
      if (event.type === 'result') this.final = event.data;
      yield event;
    }
  }

  /** The terminal execution; follows the stream (answering tool calls) until it ends. */
  result(opts: { signal?: AbortSignal } = {}): Promise<Execution> {
    if (this.final) return Promise.resolve(this.final);
    if (opts.signal) return this.drain(opts.signal);
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
    return this.draining;
  }

  /**
   * Cancels the execution: a queued one never runs, a running one is interrupted. Its stream
   * and result then say `cancelled`. Cancelling one that already ended does nothing.
   */
  async cancel(): Promise<void> {
    try {
      await this.transport.request('POST', `/v1/executions/${seg(this.id)}/cancel`, { idempotent: true });
    } catch (error) {
      if (!(error instanceof KernelfleetError && error.status === 409)) throw error;
    }
  }

  private async drain(signal?: AbortSignal): Promise<Execution> {
    for await (const event of this.events({ signal })) {
      if (event.type === 'result') return event.data;
    }
    throw new Error(`the stream of execution ${this.id} ended without its result`);
  }

  private answer(call: ToolCall): void {
    // A handle given no handlers (`attach` to watch an execution) leaves calls to the client
    // that has them: answering "no handler" would beat that client's real answer.
    if (!this.opts.tools || this.answered.has(call.callId)) return;
    this.answered.add(call.callId);
    void this.answerOnce(call).catch((error: unknown) => void this.toolAnswerErrors.push(error as Error));
  }

  private async answerOnce(call: ToolCall): Promise<void> {
    const handler = Object.hasOwn(this.opts.tools ?? {}, call.name) ? this.opts.tools![call.name] : undefined;
    let answer: ToolAnswer;
    if (!handler) {
      answer = { ok: false, error: `this client has no handler for tool "${call.name}"` };
    } else {
      try {
        const value = await handler(call.args, call);
        answer = { ok: true, value: value === undefined ? null : value };
        JSON.stringify(answer); // a value JSON cannot carry (a BigInt, a cycle) is the handler's failure
      } catch (error) {
        answer = { ok: false, error: errorText(error) };
      }
    }
    const path = `/v1/executions/${seg(this.id)}/tool-calls/${seg(call.callId)}`;
    try {
      await this.transport.request('POST', path, { body: answer, idempotent: true });
    } catch (error) {
      // Too late (the call timed out, or its execution ended): nobody waits for it any more.
      if (error instanceof KernelfleetError && (error.status === 404 || error.status === 410)) return;
      // An answer the api cannot take (too large, say): Python gets an error, not a wait.
      if (error instanceof KernelfleetError && (error.status === 400 || error.status === 413)) {
        const refused: ToolAnswer = { ok: false, error: errorText(new Error(`the client's answer was refused: ${error.message}`)) };
        await this.transport.request('POST', path, { body: refused, idempotent: true });
        return;
      }
      throw error;
    }
  }
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return (text || 'the tool handler failed').slice(0, MAX_ERROR_CHARS);
}
