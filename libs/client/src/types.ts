/**
 * The wire shapes of kernelfleet's HTTP api (docs/architecture.md, the api's OpenAPI document at
 * /docs-json), as this client sees them. The client depends on no server package: these types
 * are its own copy, and a unit test checks them against the server's contracts.
 */

export const EXECUTION_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled', 'timed_out', 'outcome_unknown'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];
export type TerminalStatus = Exclude<ExecutionStatus, 'queued' | 'running'>;

export function isTerminal(status: ExecutionStatus): status is TerminalStatus {
  return status !== 'queued' && status !== 'running';
}

export type KernelMode = 'session' | 'per-call';

/** Rich outputs of an execution, in the order the kernel produced them. */
export type DisplayOutput =
  | { type: 'image'; mimeType: 'image/png' | 'image/jpeg'; data: string }
  | { type: 'json'; data: unknown }
  | { type: 'text'; text: string; markdown: boolean }
  | { type: 'status'; event: unknown };

/** The result of one execution as the server reports it (`exitCode` null when cancelled or timed out). */
export interface WirePythonResult {
  /** stdout, stderr, display text and traceback, sanitised; a notice (timeout, stdin) is its first line. */
  output: string;
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

/** Why a session's state went away: evicted for another session, culled when idle, lost with its worker, or died. */
export type StateLostReason = 'evicted' | 'culled' | 'lost' | 'died';

export interface KernelInfo {
  workerId: string;
  generation: number;
  stateLost: boolean;
  stateLostReason?: StateLostReason;
  restarted: boolean;
}

/** A call made by code in the kernel, waiting for the client's answer. */
export interface ToolCall {
  callId: string;
  name: string;
  args: Record<string, unknown>;
  deadlineAt: number;
}

export type ToolCallOutcome = { callId: string; ok: boolean } | { callId: string; timedOut: true } | { callId: string; ended: true };

/** `GET /v1/executions/{id}`, and the data of the stream's last event. */
export interface Execution {
  executionId: string;
  sessionId: string;
  seq: number;
  status: ExecutionStatus;
  phase?: 'queue' | 'kernel_start' | 'run';
  ownerId?: string;
  kernelMode: KernelMode;
  result?: WirePythonResult;
  kernel?: KernelInfo;
  timings: { acceptedAt: number; deadlineAt: number; startedAt?: number; finishedAt?: number };
  pendingToolCalls?: ToolCall[];
  /** A file operation's record: what it did. */
  file?: FileOpOutcome;
}

/** Session files (docs/files.md). */
export type FileOpKind = 'put' | 'get' | 'delete' | 'list' | 'put-tar' | 'get-tar';

export interface FileOpError {
  status: 400 | 404 | 409 | 413 | 500 | 503;
  code: string;
  detail: string;
}

/** `PUT …/files/{path}`. */
export interface FileWritten {
  path: string;
  size: number;
  sha256: string;
}

export interface FileEntry {
  path: string;
  size: number;
  modifiedAt: number;
}

/** `GET /v1/sessions/{id}/files`. */
export interface FileList {
  files: FileEntry[];
  nextCursor: string | null;
}

/** `PUT …/files/{dir}?format=tar`. */
export interface TarWritten {
  path: string;
  files: number;
  bytes: number;
}

export interface FileOpOutcome {
  op: FileOpKind;
  path: string;
  error?: FileOpError;
  written?: FileWritten & { created: boolean };
  list?: FileList;
  tar?: TarWritten;
  bytes?: number;
}

/** An event of an execution's stream; `seq` counts 1, 2, 3 … within the execution. */
export type ExecutionEvent =
  | { seq: number; type: 'queued'; data: { seq: number } }
  | { seq: number; type: 'started'; data: { workerId: string } }
  | { seq: number; type: 'stdout' | 'stderr'; data: { text: string } }
  | { seq: number; type: 'display'; data: DisplayOutput }
  | { seq: number; type: 'status'; data: unknown }
  | { seq: number; type: 'tool_call'; data: ToolCall }
  | { seq: number; type: 'tool_result'; data: ToolCallOutcome }
  | { seq: number; type: 'result'; data: Execution };

export type ExecutionEventType = ExecutionEvent['type'];

/** `202` answer of a submit. */
export interface SubmitAccepted {
  executionId: string;
  sessionId: string;
  seq: number;
  status: ExecutionStatus;
}

export type KernelState = 'none' | 'starting' | 'idle' | 'dead' | 'lost' | 'culled' | 'evicted';

/** `GET /v1/sessions/{id}`. */
export interface Session {
  sessionId: string;
  workerId: string | null;
  kernel: { generation: number; state: KernelState };
  /** Where the session's files are: `kept` on its home worker, `lost` with its kernel, or `none`. */
  files: 'kept' | 'lost' | 'none';
  pending: number;
  lastActivityAt: number | null;
  owners: string[];
}

/** `DELETE /v1/owners/{ownerId}`. */
export interface OwnerDisposal {
  ownerId: string;
  disposed: string[];
  detached: string[];
}

/** `DELETE /v1/sessions`: the tenant's sessions disposed of, sorted. */
export interface SessionsDisposal {
  disposed: string[];
}

/** An RFC 9457 problem document, as the api answers errors. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: { field: string; message: string }[];
  quota?: string;
  limit?: number;
  /** A file operation's case (docs/files.md), e.g. `not_found`, `quota_exceeded`, `link`. */
  code?: string;
}

/** Session, owner and execution ids: 1–128 of `[A-Za-z0-9._:-]`. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Tool names as Python calls them: `tool.<name>(…)`. */
export const TOOL_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
