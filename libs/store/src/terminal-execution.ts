import type {
  Execution,
  ExecutionPhase,
  KernelInfo,
  PythonResult,
  TerminalStatus,
} from '@kernelfleet/contracts';
import type { ExecutionRecord } from './execution-record';
import type { DisplayOutput } from '@kernelfleet/contracts';

/** The sink's account of an execution's output (see @kernelfleet/sink), as the result needs it. */
export interface OutputSummary {
  output: string;
  truncated: boolean;
  totalLines: number;
  totalBytes: number;
  outputLines: number;
  outputBytes: number;
}

/** How an execution ended, before it is shaped into the wire result. */
export interface Ending {
  status: TerminalStatus;
  phase?: ExecutionPhase;
  exitCode: 0 | 1 | null;
  stdinRequested?: boolean;
  kernel?: KernelInfo;
}

/** The result of an execution whose code ran (some output went through the sink). */
export function resultFromSink(
  ending: Ending,
  summary: OutputSummary,
  displayOutputs: DisplayOutput[],
  artifactId: string | undefined,
): PythonResult {
  return {
    output: summary.output,
    exitCode: ending.exitCode,
    cancelled: ending.status === 'cancelled' || ending.status === 'timed_out',
    truncated: summary.truncated,
    ...(artifactId ? { artifactId } : {}),
    totalLines: summary.totalLines,
    totalBytes: summary.totalBytes,
    outputLines: summary.outputLines,
    outputBytes: summary.outputBytes,
    displayOutputs,
    stdinRequested: ending.stdinRequested ?? false,
  };
}

/** The result of an execution whose code never ran: only a message (or nothing). */
export function resultWithoutRun(ending: Ending, message: string): PythonResult {
  const bytes = Buffer.byteLength(message);
  return {
    output: message,
    exitCode: ending.exitCode,
    cancelled: ending.status === 'cancelled' || ending.status === 'timed_out',
    truncated: false,
    totalLines: 0,
    totalBytes: 0,
    outputLines: message ? message.split('\n').length : 0,
    outputBytes: bytes,
    displayOutputs: [],
    stdinRequested: false,
  };
}

export function terminalExecution(
  record: ExecutionRecord,
  ending: Ending,
  result: PythonResult,
  finishedAt = Date.now(),
): Execution {
  return {
    executionId: record.ref.executionId,
    sessionId: record.ref.sessionId,
    seq: record.seq,
    status: ending.status,
    ...(ending.phase ? { phase: ending.phase } : {}),
    ...(record.ownerId ? { ownerId: record.ownerId } : {}),
    kernelMode: record.kernelMode,
    result,
    ...(ending.kernel ? { kernel: ending.kernel } : {}),
    timings: {
      acceptedAt: record.acceptedAt,
      deadlineAt: record.deadlineAt,
      ...(record.startedAt ? { startedAt: record.startedAt } : {}),
      finishedAt,
    },
  };
}
