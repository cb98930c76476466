import type { DisplayOutput } from './display';
import type { Execution } from './execution';

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
  | { seq: number; type: 'result'; data: Execution };

export type ExecutionEventType = ExecutionEvent['type'];
