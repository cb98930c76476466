import { z } from 'zod';
import type { DisplayOutput } from './display';
import type { FileOpOutcome } from './files';
import { idSchema } from './ids';
import { toolsSchema, type ToolCall } from './tools';

export const KERNEL_MODES = ['session', 'per-call'] as const;
export type KernelMode = (typeof KERNEL_MODES)[number];

/** A UTF-16 surrogate not part of a pair (with the `u` flag, pairs match as one code point). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Body of `POST /v1/sessions/{sessionId}/executions` (wire contract). Unknown fields are an
 * error, not silently ignored: a typo in `timeoutMs` must not run code with the default.
 */
export const submitExecutionSchema = z.strictObject({
  code: z
    .string()
    .min(1, 'must not be empty')
    // JSON lets a string hold a lone surrogate ("\ud800"); it is not text a kernel can run.
    .refine((code) => !LONE_SURROGATE.test(code), 'must be well-formed Unicode (it holds a lone surrogate)'),
  timeoutMs: z.number('must be a finite number').int('must be an integer').positive('must be positive').optional(),
  deadlineAt: z.number('must be a finite number').int('must be an integer').positive('must be positive').optional(),
  reset: z.boolean().optional(),
  kernelMode: z.enum(KERNEL_MODES).optional(),
  ownerId: idSchema.optional(),
  retryOnKernelLoss: z.boolean().optional(),
  /** Tools Python may call as `tool.<name>(…)`; each call is answered by the client (docs/tools.md). */
  tools: toolsSchema.optional(),
  /** How long one tool call may wait for its answer (the execution's deadline bounds it too). */
  toolCallTimeoutMs: z.number('must be a finite number').int('must be an integer').positive('must be positive').optional(),
});
export type SubmitExecution = z.infer<typeof submitExecutionSchema>;

/** Optional header of a submit: the same key with the same request answers the same execution. */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';

/** `Idempotency-Key` values (wire contract): 1–255 printable ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x20-\x7E]{1,255}$/;

export const EXECUTION_STATUSES = [
  'queued',
  'running',
  'completed',
  'failed',
  'cancelled',
  'timed_out',
  'outcome_unknown',
] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];
export type TerminalStatus = Exclude<ExecutionStatus, 'queued' | 'running'>;
/** The statuses an execution ends in, exactly one each (invariant 7). */
export const TERMINAL_STATUSES = EXECUTION_STATUSES.filter(isTerminal);

export function isTerminal(status: ExecutionStatus): status is TerminalStatus {
  return status !== 'queued' && status !== 'running';
}

/** Where an execution was when it ended early: never started (`queue`) or inside the kernel. */
export type ExecutionPhase = 'queue' | 'kernel_start' | 'run';

/** The result of one execution, as the original executor shaped it (wire contract). */
export interface PythonResult {
  output: string;
  /** 0 ok, 1 Python error or stdin refusal, null when cancelled or timed out. */
  exitCode: 0 | 1 | null;
  cancelled: boolean;
  truncated: boolean;
  artifactId?: string;
  totalLines: number;
  totalBytes: number;
  outputLines: number;
  outputBytes: number;
  displayOutputs: DisplayOutput[];
  stdinRequested: boolean;
}

/**
 * Why a session's state went away (docs/capacity.md): its kernel was `evicted` to make room for
 * another session, `culled` after its idle time, `lost` with its worker or Jupyter server (or
 * a drain), or it `died` (crashed, or killed at a deadline).
 */
export const STATE_LOST_REASONS = ['evicted', 'culled', 'lost', 'died'] as const;
export type StateLostReason = (typeof STATE_LOST_REASONS)[number];

export interface KernelInfo {
  workerId: string;
  /** Counts the kernels this session has had; a new kernel means a new generation. */
  generation: number;
  /** The session's state was lost without being asked for (kernel died, killed, replaced). */
  stateLost: boolean;
  /** Why, when `stateLost` is true on the first result of a new kernel. */
  stateLostReason?: StateLostReason;
  /** A new kernel was started for this execution (first use, reset, replacement). */
  restarted: boolean;
}

export interface ExecutionTimings {
  acceptedAt: number;
  deadlineAt: number;
  startedAt?: number;
  finishedAt?: number;
}

/** `GET /v1/executions/{id}` and the data of the SSE `result` event (wire contract). */
export interface Execution {
  executionId: string;
  sessionId: string;
  seq: number;
  status: ExecutionStatus;
  phase?: ExecutionPhase;
  ownerId?: string;
  kernelMode: KernelMode;
  result?: PythonResult;
  kernel?: KernelInfo;
  timings: ExecutionTimings;
  /** Tool calls of a running execution that wait for the client's answer (docs/tools.md). */
  pendingToolCalls?: ToolCall[];
  /** A file operation's record (docs/files.md): what it did; such a record has no `result`. */
  file?: FileOpOutcome;
}

/** `202` answer of a submit (wire contract). */
export interface SubmitAccepted {
  executionId: string;
  sessionId: string;
  seq: number;
  status: ExecutionStatus;
}

/** `200` answer of `DELETE /v1/sessions` (wire contract): the tenant's sessions that were disposed. */
export interface SessionsDisposal {
  /** Sessions that had a kernel or pending executions, sorted: each disposed as `DELETE /v1/sessions/{id}` does. */
  disposed: string[];
}

/** `200` answer of `DELETE /v1/owners/{ownerId}` (wire contract). */
export interface OwnerDisposal {
  ownerId: string;
  /** Sessions the owner alone held: shut down as `DELETE /v1/sessions/{id}` does. */
  disposed: string[];
  /** Shared sessions the owner was taken off; their other owners keep them running. */
  detached: string[];
}
