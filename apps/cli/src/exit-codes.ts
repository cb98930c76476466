import type { TerminalStatus } from '@kernelfleet/client';

/**
 * The CLI's exit codes, in one place. `run` exits as the Python code did (0, 1), with the
 * conventions of `timeout(1)` (124) and of a shell's Ctrl-C (130) for the other endings.
 */
export const EXIT = {
  ok: 0,
  /** A Python error, the stdin refusal; for admin commands, a failure (Redis unreachable, no such key). */
  failed: 1,
  /** Bad arguments or configuration, or a request the api refused (unknown key, bad value). */
  usage: 2,
  /** The api could not be reached within the retry budget. */
  unreachable: 3,
  timedOut: 124,
  /** Cancelled: Ctrl-C (which cancels the execution on the server), or a cancel from elsewhere. */
  interrupted: 130,
} as const;

const BY_STATUS: Record<TerminalStatus, number> = {
  completed: EXIT.ok,
  failed: EXIT.failed,
  timed_out: EXIT.timedOut,
  cancelled: EXIT.interrupted,
  // The kernel was lost mid-run: whether the code finished is unknown, so not a success.
  outcome_unknown: EXIT.failed,
};

export function exitCodeOf(status: TerminalStatus): number {
  return BY_STATUS[status];
}
