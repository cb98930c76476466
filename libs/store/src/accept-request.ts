import type { FileOpRequest, KernelMode, ToolDeclaration } from '@kernelfleet/contracts';
import type { ExecutionRef, SessionRef } from './keys';

/** What accept.lib.lua takes and answers (ExecutionRepository.accept, Submissions). */
export interface AcceptRequest extends SessionRef {
  code: string;
  acceptedAt: number;
  deadlineAt: number;
  kernelMode: KernelMode;
  reset: boolean;
  ownerId?: string;
  retryOnKernelLoss: boolean;
  tools?: ToolDeclaration[];
  toolCallTimeoutMs?: number;
  /** A file operation (docs/files.md) instead of code. */
  fileOp?: FileOpRequest;
  /**
   * The id to give the execution (an Idempotency-Key claim names it up front); a new one when
   * absent. Accepting an id that already exists changes nothing and answers `duplicate`.
   */
  executionId?: string;
  /**
   * The channel of the api process that waits for this execution's end (`wait=true`,
   * ApiProcessChannel): the finish also publishes the terminal execution there.
   */
  waiter?: string;
  /**
   * The channel of the api process that follows every event of this execution (a streamed
   * submit, ApiProcessChannel): each event is also published there, with the execution's id.
   */
  follower?: string;
}

/** One accept.lib.lua call (ExecutionRepository.acceptCall). */
export interface AcceptCall {
  ref: ExecutionRef;
  keys: string[];
  args: (string | number)[];
  /** The owner whose sessions index gets the session ('' = none). */
  indexedOwner: string;
}

/** What accept.lib.lua answered for `ref`: `{seq, laneLength, home or false, duplicate}`. */
export function acceptOutcomeOf(ref: ExecutionRef, reply: unknown): AcceptOutcome {
  const [seq, laneLength, home, duplicate] = reply as [number, number, string | null, number];
  return { ref, seq, isHead: duplicate !== 1 && laneLength === 1, home: home || null, duplicate: duplicate === 1 };
}

export interface AcceptOutcome {
  ref: ExecutionRef;
  seq: number;
  isHead: boolean;
  home: string | null;
  /** The execution already existed (same id): nothing was changed; `seq` is its seq. */
  duplicate: boolean;
}
