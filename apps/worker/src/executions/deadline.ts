/**
 * One absolute deadline per execution (accept time + timeout, or the client's `deadlineAt`),
 * checked at every step: claim, kernel start, run. Messages are the original executor's, word
 * for word (clients match on them).
 */
export class Deadline {
  constructor(
    readonly at: number,
    /** The span the client was given (deadline − accept time), for "timed out after Ns". */
    readonly budgetMs: number,
  ) {}

  remaining(now = Date.now()): number {
    return Math.max(0, this.at - now);
  }

  expired(now = Date.now()): boolean {
    return now >= this.at;
  }

  /** A kernel start step gets min(remaining, cap). */
  stepBudget(capMs: number, now = Date.now()): number {
    return Math.min(this.remaining(now), capMs);
  }

  /** Whole seconds as the messages print them: max(1, round(ms / 1000)). */
  get seconds(): number {
    return messageSeconds(this.budgetMs);
  }
}

export function messageSeconds(ms: number): number {
  return Math.max(1, Math.round(ms / 1000));
}

export const NOTICES = {
  interrupted: (seconds: number) =>
    `eval cell timed out after ${seconds}s; kernel interrupted but remains running. ` +
    'Reset the kernel via { reset: true } if state appears corrupted.',
  killed:
    'eval cell timed out and the kernel was unresponsive to interrupt; the kernel has been killed ' +
    'and will be recreated on the next call.',
  stdin: 'Kernel requested stdin; interactive input is not supported.',
  /** kernelfleet's own: the session was disposed (or taken from this worker) while the execution ran. */
  disposed: 'the session was disposed while this execution ran; its kernel was shut down',
  /** kernelfleet's own: the session was disposed while the execution's kernel started; nothing ran. */
  disposedBeforeRun: 'the session was disposed before this execution\'s code was sent; nothing ran',
} as const;
