import type { DisplayOutput } from './display';
import type { Execution } from './execution';
import type { ToolCall, ToolCallOutcome } from './tools';

/**
 * Output events of one execution, in SSE and on the replay stream (wire contract). Every
 * event carries the execution's own `seq` (1, 2, 3 …) so a client can resume exactly.
 */
export type ExecutionEvent =
  | { seq: number; type: 'queued'; data: { seq: number } }
  | { seq: number; type: 'started'; data: { workerId: string } }
  | { seq: number; type: 'stdout' | 'stderr'; data: { text: string } }
  | { seq: number; type: 'display'; data: DisplayOutput }
  | { seq: number; type: 'status'; data: unknown }
  /** Code in the kernel called a declared tool: answer it with POST …/tool-calls/{callId}. */
  | { seq: number; type: 'tool_call'; data: ToolCall }
  /** A call was answered (`ok`), expired (`timedOut`) or ended with its execution (`ended`). */
  | { seq: number; type: 'tool_result'; data: ToolCallOutcome }
  | { seq: number; type: 'result'; data: Execution };

export type ExecutionEventType = ExecutionEvent['type'];

/** The terminal event: the execution as it ended, the last event of its stream. */
export type ResultEvent = Extract<ExecutionEvent, { type: 'result' }>;

/** Every event type, in the order an execution may emit them (`?events=` picks among these). */
export const EXECUTION_EVENT_TYPES = ['queued', 'started', 'stdout', 'stderr', 'display', 'status', 'tool_call', 'tool_result', 'result'] as const satisfies readonly ExecutionEventType[];

// A type missing from the list above fails here.
const everyEventTypeListed: Record<Exclude<ExecutionEventType, (typeof EXECUTION_EVENT_TYPES)[number]>, never> = {};
void everyEventTypeListed;
