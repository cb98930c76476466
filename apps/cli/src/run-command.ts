import { readFileSync } from 'node:fs';
import { KernelfleetClient, sessionIdForFolder, type DisplayOutput, type Execution, type ExecutionEvent, type ExecutionHandle, type TerminalStatus } from '@kernelfleet/client';
import { apiTarget, parseArgs, positiveInt, UsageError } from './cli-args';
import { EXIT, exitCodeOf } from './exit-codes';

export const RUN_USAGE = `usage: kernelfleet run [file|-] [--session ID] [--timeout ms] [--json] [--reset] [--per-call] [--owner ID]

  Runs the file (or standard input: - or no file) in the session and streams its stdout and
  stderr to this terminal's. The session defaults to one named after this folder.
  --timeout ms   the whole execution's budget (queue, kernel start, run); the api's default is 30 s
  --json         print only the terminal execution, as JSON, when it ends
  --reset        start the session on a fresh kernel
  --per-call     run on a kernel of its own, shut down after
  --owner ID     own the session's kernel as ID (kernelfleet session rm --owner ID)
  --url, --key   the api and an API key (else KERNELFLEET_URL, KERNELFLEET_API_KEY)

  Exit code: the Python code's (0, 1); 124 timed out; 130 cancelled (Ctrl-C cancels it on the
  server; a second Ctrl-C leaves at once).`;

export interface RunIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Registers the Ctrl-C handler; answers a function that removes it. */
  onInterrupt(handler: () => void): () => void;
  /** Leaves the process at once (a second Ctrl-C). */
  exit(code: number): never;
}

export interface RunRequest {
  source: string;
  sessionId?: string;
  timeoutMs?: number;
  json: boolean;
  reset: boolean;
  perCall: boolean;
  ownerId?: string;
}

export function parseRun(argv: string[]): RunRequest & { target: (env: NodeJS.ProcessEnv) => { baseUrl: string; apiKey: string } } {
  const args = parseArgs(argv, ['session', 'timeout', 'owner', 'url', 'key'], ['json', 'reset', 'per-call'], 'run');
  if (args.operands.length > 1) throw new UsageError(`run: one file at most, got ${args.operands.length}`);
  return {
    source: args.operands[0] ?? '-',
    sessionId: args.values.get('session'),
    timeoutMs: positiveInt(args, 'timeout', 'run'),
    json: args.flags.has('json'),
    reset: args.flags.has('reset'),
    perCall: args.flags.has('per-call'),
    ownerId: args.values.get('owner'),
    target: (env) => apiTarget(args, env, 'run'),
  };
}

async function readSource(source: string, io: RunIo): Promise<string> {
  if (source !== '-') {
    try {
      return readFileSync(source, 'utf8');
    } catch (error) {
      throw new UsageError(`run: cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (io.stdin.isTTY) throw new UsageError('run: no file given and standard input is a terminal (pipe the code in, or name a file)');
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** `kernelfleet run`: the exit code as documented in RUN_USAGE. */
export async function runCommand(argv: string[], io: RunIo): Promise<number> {
  const request = parseRun(argv);
  const target = request.target(io.env);
  const code = await readSource(request.source, io);
  if (code.trim() === '') throw new UsageError('run: the code is empty');
  const client = new KernelfleetClient(target);

  let interrupted = false;
  let execution: ExecutionHandle | undefined;
  let cancelling: Promise<void> | undefined;
  const cancel = () => {
    if (execution && !cancelling) cancelling = execution.cancel().catch((e: unknown) => void io.stderr.write(`kernelfleet: cancelling failed: ${(e as Error).message}\n`));
  };
  const stopListening = io.onInterrupt(() => {
    if (interrupted) io.exit(EXIT.interrupted);
    interrupted = true;
    io.stderr.write('\nkernelfleet: cancelling the execution (Ctrl-C again leaves without waiting)\n');
    cancel();
  });
  try {
    execution = await client.execute(request.sessionId ?? sessionIdForFolder(io.cwd), code, {
      timeoutMs: request.timeoutMs,
      reset: request.reset || undefined,
      kernelMode: request.perCall ? 'per-call' : undefined,
      ownerId: request.ownerId,
    });
    if (interrupted) cancel();
    for await (const event of execution.events()) {
      if (request.json) {
        if (event.type === 'result') io.stdout.write(`${JSON.stringify(event.data, null, 2)}\n`);
      } else {
        write(event, io);
      }
      if (event.type === 'result') {
        await cancelling;
        return exitCodeOf(event.data.status as TerminalStatus);
      }
    }
    throw new Error('the stream ended without the result');
  } finally {
    stopListening();
  }
}

/** One event on the terminal: stdout and display text to stdout, the rest to stderr. */
function write(event: ExecutionEvent, io: RunIo): void {
  switch (event.type) {
    case 'stdout':
      io.stdout.write(event.data.text);
      break;
    case 'stderr':
      io.stderr.write(event.data.text);
      break;
    case 'display':
      writeDisplay(event.data, io);
      break;
    case 'result': {
      const result = event.data.result;
      const notice = noticeOf(event.data);
      if (notice) io.stderr.write(`${notice}\n`);
      if (result?.artifactId) {
        io.stderr.write(`[the output was truncated; ${result.totalBytes} bytes in all: kernelfleet artifact ${event.data.executionId} FILE writes it whole]\n`);
      }
    }
  }
}

/**
 * The kernelfleet notice heading the output (a timeout, the stdin refusal, a lost kernel), which
 * the live stream did not carry. A plain Python error has none: its output is the program's own.
 * Code that never ran (phase `queue` or `kernel_start`) has only kernelfleet's words, e.g. a
 * queue timeout that names a full fleet (docs/capacity.md).
 */
export function noticeOf(execution: Execution): string | undefined {
  const result = execution.result;
  if (!result || execution.status === 'completed') return undefined;
  if (execution.status === 'failed' && execution.phase === 'run' && !result.stdinRequested) return undefined;
  const first = result.output.split('\n', 1)[0];
  if (execution.phase === 'queue' || execution.phase === 'kernel_start') return first || undefined;
  return /^\[.*\]$/.test(first) ? first : undefined;
}

function writeDisplay(output: DisplayOutput, io: RunIo): void {
  if (output.type === 'text') io.stdout.write(output.text);
  else if (output.type === 'image') io.stderr.write(`[${output.mimeType} output, ${Math.round((output.data.length * 3) / 4)} bytes: --json shows it]\n`);
  else if (output.type === 'json') io.stdout.write(`${JSON.stringify(output.data)}\n`);
}
