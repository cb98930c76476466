import type { ExecuteOutcome, KernelHandle } from '@kernelfleet/kernel';
import type { Deadline } from './deadline';
import type { ExecutionOutput } from './execution-output';

/** How one run of code on a kernel ended. */
export type KernelRunEnd =
  | { kind: 'finished'; outcome: ExecuteOutcome; interruptedBy?: 'deadline' | 'cancel' }
  | { kind: 'killed'; by: 'deadline' | 'cancel' }
  | { kind: 'died'; interruptedBy?: 'deadline' | 'cancel' }
  /** The session was disposed (or taken from this worker): its kernel is being shut down. */
  | { kind: 'disposed' };

/** What can end a run early. */
export interface RunSignals {
  /** A cancel of the execution: interrupt, then kill after the grace. */
  cancel: AbortSignal;
  /**
   * The session's kernel goes (SessionKernels aborts it, then kills the kernel): the run ends at
   * once, with no interrupt and no grace, whatever the cell is doing.
   */
  disposed?: AbortSignal;
}

/**
 * Runs code on a kernel under the execution's deadline and cancel signal: at the deadline (or
 * on cancel) the kernel is interrupted; if the cell is still running `graceMs` later, the run
 * ends `killed` and the caller must replace the kernel. A disposal ends the run `disposed` at
 * once; the kernel is shut down by whoever disposed it.
 */
export function runOnKernel(
  handle: KernelHandle,
  code: string,
  output: ExecutionOutput,
  deadline: Deadline,
  signals: RunSignals,
  graceMs: number,
  /** The execute request's metadata (the tool bridge's address and token). */
  metadata?: Record<string, unknown>,
): Promise<KernelRunEnd> {
  const { cancel, disposed } = signals;
  if (disposed?.aborted) return Promise.resolve({ kind: 'disposed' });
  return new Promise((resolve) => {
    let interruptedBy: 'deadline' | 'cancel' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const end = (value: KernelRunEnd) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadlineTimer);
      clearTimeout(killTimer);
      cancel.removeEventListener('abort', onCancel);
      disposed?.removeEventListener('abort', onDisposed);
      resolve(value);
    };
    const interrupt = (by: 'deadline' | 'cancel') => {
      if (interruptedBy || settled) return;
      interruptedBy = by;
      void handle.interrupt().catch(() => undefined);
      killTimer = setTimeout(() => end({ kind: 'killed', by }), graceMs);
    };
    const onCancel = () => interrupt('cancel');
    const onDisposed = () => end({ kind: 'disposed' });
    const deadlineTimer = setTimeout(() => interrupt('deadline'), deadline.remaining());
    disposed?.addEventListener('abort', onDisposed);
    cancel.addEventListener('abort', onCancel);
    if (cancel.aborted) onCancel();

    handle
      .execute(
        code,
        {
          onStream: (name, text) => output.stream(name, text),
          onDisplay: (display) => output.display(display),
        },
        metadata,
      )
      .then(
        (outcome) => end({ kind: 'finished', outcome, interruptedBy }),
        () => end({ kind: 'died', interruptedBy }),
      );
  });
}
