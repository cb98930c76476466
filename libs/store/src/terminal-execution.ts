import type {
  Execution,
  ExecutionPhase,
  FileOpOutcome,
  FileOpRequest,
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
  // A file operation ended without doing its work (cancelled, timed out, its worker lost).
  if (record.fileOp) return terminalFileOp(record, ending, fileOpUndone(record.fileOp, ending, result.output), finishedAt);
  return {
    ...terminalFields(record, ending, finishedAt),
    result,
  };
}

/** What a file operation that ended with `ending` before doing its work answers. */
function fileOpUndone(op: FileOpRequest, ending: Ending, message: string): FileOpOutcome {
  const detail = message.replace(/^\[|\]$/g, '') || `the file operation was ${ending.status.replace('_', ' ')}`;
  // Cancelled: by the client or a disposal of the session; the rest are worth retrying.
  return { op: op.op, path: op.path, error: { status: ending.status === 'cancelled' ? 409 : 503, code: ending.status, detail } };
}

/** A file operation's terminal record: what it did (or why not) in `file`, no Python result. */
export function terminalFileOp(record: ExecutionRecord, ending: Ending, file: FileOpOutcome, finishedAt = Date.now()): Execution {
  return { ...terminalFields(record, ending, finishedAt), file };
}

function terminalFields(record: ExecutionRecord, ending: Ending, finishedAt: number): Execution {
  return {
    executionId: record.ref.executionId,
    sessionId: record.ref.sessionId,
    seq: record.seq,
    status: ending.status,
    ...(ending.phase ? { phase: ending.phase } : {}),
    ...(record.ownerId ? { ownerId: record.ownerId } : {}),
    kernelMode: record.kernelMode,
    ...(ending.kernel ? { kernel: ending.kernel } : {}),
    timings: {
      acceptedAt: record.acceptedAt,
      deadlineAt: record.deadlineAt,
      ...(record.startedAt ? { startedAt: record.startedAt } : {}),
      finishedAt,
    },
  };
}
