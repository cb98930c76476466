import type { ToolHandlers } from './execution.js';
import type { Execution, KernelInfo, KernelMode, TerminalStatus, WirePythonResult } from './types.js';

/**
 * Options of `executePython`, named and meant as the original single-machine executor had them
 * (docs/client.md maps each).
 */
export interface ExecutePythonOptions {
  /** The session (its kernel and globals). Default: derived from `cwd` (see sessionIdForFolder). */
  sessionId?: string;
  /** The folder the default session id is derived from. Default: the process's working folder. */
  cwd?: string;
  /** The whole execution's budget, from now: queue wait, kernel start and run. Server default 30 s. */
  timeoutMs?: number;
  /** An absolute deadline (epoch ms) instead of `timeoutMs`; wins when both are given. */
  deadlineMs?: number;
  /** Output as it comes: stdout, stderr and display text, sanitised, in order. */
  onChunk?: (text: string) => void;
  /** Aborting cancels the execution on the server; the result then says `cancelled`. */
  signal?: AbortSignal;
  /** Owner of the session's kernel, for `disposeKernelSessionsByOwner`. Default: the session id. */
  kernelOwnerId?: string;
  /** `session` (default) reuses the session's kernel; `per-call` runs on a fresh kernel shut down after. */
  kernelMode?: KernelMode;
  /** Shut the session's kernel down and start a new one before the code runs. */
  reset?: boolean;
  /** When the output overflowed the result, the full output is downloaded to this file (Node). */
  artifactPath?: string;
  /** Status events (tool activity among them) go here as they come, and not into `displayOutputs`. */
  emitStatus?: (event: unknown) => void;
  /** Tools the code may call as `tool.<name>(…)`, and their handlers (docs/tools.md). */
  tools?: ToolHandlers;
  /** How long one tool call may wait for its handler (the deadline bounds it anyway). */
  toolCallTimeoutMs?: number;
  /** Run the code once more on a fresh kernel when the kernel is lost mid-run (default: outcome_unknown). */
  retryOnKernelLoss?: boolean;
}

/** What `executePython` resolves to: the original's `PythonResult`, and where kernelfleet ran it. */
export interface PythonResult extends Omit<WirePythonResult, 'exitCode'> {
  /** 0 ok, 1 a Python error or the stdin refusal, undefined when cancelled or timed out. */
  exitCode: 0 | 1 | undefined;
  /** Where the artifact was written (`artifactPath`), when there was one. */
  artifactPath?: string;
  /** kernelfleet's terminal status: `completed`, `failed`, `cancelled`, `timed_out` or `outcome_unknown`. */
  status: TerminalStatus;
  sessionId: string;
  /** Undefined when nothing was sent (aborted before, or the deadline had passed). */
  executionId?: string;
  kernel?: KernelInfo;
}

/** What the original answered without running anything: an abort before the start, or a deadline already passed. */
export function resultWithoutRun(sessionId: string, why: 'aborted' | 'deadline'): PythonResult {
  const output = why === 'deadline' ? 'Command timed out' : '';
  return {
    output,
    exitCode: undefined,
    cancelled: true,
    truncated: false,
    totalLines: 0,
    totalBytes: 0,
    outputLines: output ? 1 : 0,
    outputBytes: output.length,
    displayOutputs: [],
    stdinRequested: false,
    status: why === 'deadline' ? 'timed_out' : 'cancelled',
    sessionId,
  };
}

/** The original's result from a terminal execution. */
export function pythonResultOf(execution: Execution, keepStatus: boolean): PythonResult {
  const wire = execution.result;
  if (!wire) throw new Error(`execution ${execution.executionId} ended ${execution.status} without a result`);
  const { exitCode, displayOutputs, ...rest } = wire;
  return {
    ...rest,
    exitCode: exitCode ?? undefined,
    displayOutputs: keepStatus ? displayOutputs : displayOutputs.filter((d) => d.type !== 'status'),
    status: execution.status as TerminalStatus,
    sessionId: execution.sessionId,
    executionId: execution.executionId,
    kernel: execution.kernel,
  };
}
