import type { ToolAnswer, ToolCall } from '@kernelfleet/contracts';
import type { ExecutionRef, KeySpace } from './keys';
import type { RedisClient } from './redis-connection';
import { registerScripts, type ScriptRunner } from './scripts';

/** What the client's answer did (see tool-call-answer-3.lua). */
export type AnswerOutcome = 'answered' | 'same' | 'conflict' | 'missing' | 'gone';

/** A call as stored: the call and how far it got. */
export interface StoredToolCall {
  call: ToolCall;
  state: 'pending' | 'answered' | 'timedOut' | 'ended';
  answer?: ToolAnswer;
}

/**
 * JSON with every object's keys sorted: the same answer sent with its fields in another order
 * (or other white space) is the same answer.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The tool calls of executions (docs/tools.md): the worker opens a call when code in the kernel
 * makes it, the client's answer (through any api replica) is kept once, and the worker ends the
 * calls nobody answered. Each step is one script, in the execution's hash slot, and emits the
 * matching event in the execution's numbered stream, with the status event that goes with it.
 */
export class ToolCalls {
  private readonly run: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly policy: { retentionSeconds: number; maxReplayEvents: number },
  ) {
    this.run = registerScripts(redis);
  }

  private scriptKeys(ref: ExecutionRef): string[] {
    return [this.keys.execution(ref), this.keys.events(ref), this.keys.toolCalls(ref)];
  }

  /**
   * Records and emits a call, with `status` (the status event that goes with it) right after;
   * false when the execution is no longer running.
   */
  async open(ref: ExecutionRef, call: ToolCall, status: unknown): Promise<boolean> {
    const seq = await this.run('tool-call-open', this.scriptKeys(ref), [
      call.callId, JSON.stringify(call), this.keys.liveChannel(ref), this.policy.maxReplayEvents, this.policy.retentionSeconds,
      JSON.stringify(status),
    ]);
    return Number(seq) > 0;
  }

  /** Keeps the client's answer (the first one) and tells the worker running the execution. */
  async answer(ref: ExecutionRef, callId: string, answer: ToolAnswer): Promise<AnswerOutcome> {
    return (await this.run('tool-call-answer', this.scriptKeys(ref), [
      callId, canonicalJson(answer), answer.ok ? '1' : '0', this.keys.liveChannel(ref), this.policy.maxReplayEvents,
      this.keys.workerControlPrefix(), ref.executionId, JSON.stringify(answer),
    ])) as AnswerOutcome;
  }

  /** Ends a call nobody answered: 'ended', or its state when it was no longer pending. */
  async end(ref: ExecutionRef, callId: string, how: 'timedOut' | 'ended'): Promise<string> {
    return (await this.run('tool-call-end', this.scriptKeys(ref), [callId, how, this.keys.liveChannel(ref), this.policy.maxReplayEvents])) as string;
  }

  /** One call with its state and answer; undefined when there is no such call. */
  async get(ref: ExecutionRef, callId: string): Promise<StoredToolCall | undefined> {
    const [call, state, answer] = await this.redis.hmget(this.keys.toolCalls(ref), callId, `${callId}:state`, `${callId}:answer`);
    if (!call || !state) return undefined;
    return { call: JSON.parse(call) as ToolCall, state: state as StoredToolCall['state'], ...(answer ? { answer: JSON.parse(answer) as ToolAnswer } : {}) };
  }

  /** The calls still waiting for an answer, oldest first. */
  async pending(ref: ExecutionRef): Promise<ToolCall[]> {
    const all = await this.redis.hgetall(this.keys.toolCalls(ref));
    return Object.entries(all)
      .filter(([field, state]) => field.endsWith(':state') && state === 'pending' && all[field.slice(0, -':state'.length)])
      .map(([field]) => JSON.parse(all[field.slice(0, -':state'.length)]) as ToolCall)
      .sort((a, b) => a.deadlineAt - b.deadlineAt || (a.callId < b.callId ? -1 : 1));
  }
}
