import type { Execution } from '@kernelfleet/contracts';
import type { Dispatcher } from './dispatcher';
import type { ExecutionRepository, FinishOutcome } from './execution-repository';
import type { ExecutionRef } from './keys';
import { resultWithoutRun, terminalExecution, type Ending } from './terminal-execution';

/**
 * Lane moves that both apps make: end an execution and hand the lane to the next one. Whoever
 * ends the lane head dispatches the next head; that is the only way a lane advances.
 */
export class SessionLanes {
  private readonly finishedListeners: FinishedListener[] = [];

  constructor(
    private readonly executions: ExecutionRepository,
    private readonly dispatcher: Dispatcher,
  ) {}

  /**
   * `listener` hears of every terminal state this process writes, right after the write. The
   * finish script refuses a second write, so over all processes each execution is heard of
   * exactly once (metrics count here). A throwing listener is ignored.
   */
  onFinished(listener: FinishedListener): void {
    this.finishedListeners.push(listener);
  }

  /**
   * Ends the execution (ExecutionRepository.finish; `runner`: the worker ending its own run) and
   * dispatches the session's next lane head.
   */
  async finish(ref: ExecutionRef, execution: Execution, onlyIf: 'queued' | 'running' | '', runner?: string): Promise<FinishOutcome> {
    const outcome = await this.executions.finish(ref, execution, onlyIf, runner);
    if (outcome.kind === 'finished') {
      for (const listener of this.finishedListeners) {
        try {
          listener(ref, execution);
        } catch {
          // Observers must not change what happened to the execution.
        }
      }
    }
    if (outcome.kind === 'finished' && outcome.nextHead) {
      await this.dispatcher.dispatch(outcome.nextHead, undefined, 0, outcome.nextPriority);
    }
    return outcome;
  }

  /**
   * Ends a queued execution that never ran: `cancelled` (empty output) or `timed_out`
   * (`Command timed out`, or a message naming the cause), phase `queue`. Answers what happened, so a caller that lost the race
   * against a worker's claim can fall back to cancelling the run.
   */
  async endQueued(ref: ExecutionRef, status: 'cancelled' | 'timed_out', timeoutMessage = QUEUE_TIMEOUT_MESSAGE): Promise<FinishOutcome> {
    const record = await this.executions.getRecord(ref);
    if (!record) return { kind: 'missing' };
    if (record.status !== 'queued') return { kind: 'conflict', status: record.status };
    const ending: Ending = { status, phase: 'queue', exitCode: null };
    const message = status === 'timed_out' ? timeoutMessage : '';
    return this.finish(ref, terminalExecution(record, ending, resultWithoutRun(ending, message)), 'queued');
  }
}

/** Hears of a terminal state written by this process (see SessionLanes.onFinished). */
export type FinishedListener = (ref: ExecutionRef, execution: Execution) => void;

/** The original executor's words for a deadline that passed before the code ran. */
export const QUEUE_TIMEOUT_MESSAGE = 'Command timed out';
