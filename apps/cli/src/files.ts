import { once } from 'node:events';
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { ID_PATTERN, KernelfleetClient, KernelfleetError, sessionFilePathProblem, TarError, type SessionFiles } from '@kernelfleet/client';
import { apiTarget, parseArgs, positiveInt, UsageError } from './cli-args';
import { EXIT } from './exit-codes';

export const FILES_USAGE = `usage: kernelfleet files put|get|ls|rm|push|pull SESSION …

  files put SESSION LOCAL [REMOTE]         upload the file LOCAL to REMOTE (default: LOCAL's name;
                                           a REMOTE ending in / is a folder to put it in). LOCAL
                                           - is standard input, and then REMOTE is needed
  files get SESSION REMOTE [LOCAL|-]       download REMOTE to the file LOCAL, or to standard
                                           output (- or no LOCAL)
  files ls SESSION [PREFIX]                the session's files (those starting with PREFIX):
                                           size, last change (UTC) and path
  files rm SESSION REMOTE                  delete a file, or a folder with everything in it
  files push SESSION LOCALDIR [REMOTEDIR]  upload a folder, in one request (links are skipped)
  files pull SESSION REMOTEDIR LOCALDIR    download a folder and extract it into LOCALDIR

  Paths in the session are relative to its folder, with / between folders; a REMOTEDIR of . is
  the session's folder itself (push's default). Files take their turn in the session: a call
  waits while the session runs code.
  --timeout ms   how long the api may take, the wait for the session's turn included
  --url, --key   the api and an API key (else KERNELFLEET_URL, KERNELFLEET_API_KEY)

  Exit code: 0 done; 1 refused by the api (no such file, too large, …) or failed locally; 2 a
  bad command line; 3 the api could not be reached.`;

export type FilesRequest =
  | { verb: 'put'; sessionId: string; local: string; remote: string }
  | { verb: 'get'; sessionId: string; remote: string; local: string }
  | { verb: 'ls'; sessionId: string; prefix?: string }
  | { verb: 'rm'; sessionId: string; remote: string }
  | { verb: 'push'; sessionId: string; localDir: string; remoteDir: string }
  | { verb: 'pull'; sessionId: string; remoteDir: string; localDir: string };

export type ParsedFiles = FilesRequest & { timeoutMs?: number; target: (env: NodeJS.ProcessEnv) => { baseUrl: string; apiKey: string } };

/** The operands each command takes: required ones, then optional ones. */
const OPERANDS: Record<FilesRequest['verb'], { required: string[]; optional: string[] }> = {
  put: { required: ['SESSION', 'LOCAL'], optional: ['REMOTE'] },
  get: { required: ['SESSION', 'REMOTE'], optional: ['LOCAL'] },
  ls: { required: ['SESSION'], optional: ['PREFIX'] },
  rm: { required: ['SESSION', 'REMOTE'], optional: [] },
  push: { required: ['SESSION', 'LOCALDIR'], optional: ['REMOTEDIR'] },
  pull: { required: ['SESSION', 'REMOTEDIR', 'LOCALDIR'], optional: [] },
};

const isVerb = (verb: string | undefined): verb is FilesRequest['verb'] => verb !== undefined && Object.hasOwn(OPERANDS, verb);

export function parseFiles(argv: string[]): ParsedFiles {
  const [verb, ...rest] = argv;
  if (!isVerb(verb)) throw new UsageError(verb ? `files: unknown command "${verb}"` : 'files: missing command (put, get, ls, rm, push or pull)');
  const what = `files ${verb}`;
  const args = parseArgs(rest, ['timeout', 'url', 'key'], [], what);
  const { required, optional } = OPERANDS[verb];
  const given = args.operands;
  if (given.length < required.length || given.length > required.length + optional.length) {
    const shape = [...required, ...optional.map((name) => `[${name}]`)].join(' ');
    throw new UsageError(`${what}: takes ${shape}, got ${given.length} argument(s)`);
  }
  const [sessionId, second, third] = given;
  if (!ID_PATTERN.test(sessionId)) throw new UsageError(`${what}: "${sessionId}" is not a session id (1-128 of A-Z a-z 0-9 . _ : -)`);
  const common = { timeoutMs: positiveInt(args, 'timeout', what), target: (env: NodeJS.ProcessEnv) => apiTarget(args, env, what) };
  switch (verb) {
    case 'put': {
      if (second === '-' && third === undefined) throw new UsageError(`${what}: standard input has no name: give REMOTE`);
      const remote = third === undefined || third.endsWith('/') ? `${third ?? ''}${basename(second)}` : third;
      return { verb, sessionId, local: second, remote: remotePath(remote, what), ...common };
    }
    case 'get':
      return { verb, sessionId, remote: remotePath(second, what), local: third ?? '-', ...common };
    case 'ls':
      return { verb, sessionId, prefix: second, ...common };
    case 'rm':
      return { verb, sessionId, remote: remotePath(second, what), ...common };
    case 'push':
      return { verb, sessionId, localDir: second, remoteDir: remoteFolder(third ?? '.', what), ...common };
    case 'pull':
      return { verb, sessionId, remoteDir: remoteFolder(second, what), localDir: third, ...common };
  }
}

/** A path in the session as typed: a trailing `/` is let through (`rm s1 data/`). */
function remotePath(typed: string, what: string): string {
  const path = typed.replace(/(?<=.)\/+$/, '');
  const problem = sessionFilePathProblem(path);
  if (problem !== undefined) throw new UsageError(`${what}: "${typed}" is not a path in the session: it ${problem}`);
  return path;
}

/** A folder in the session; `.` (or `/`) is the session's folder itself. */
function remoteFolder(typed: string, what: string): string {
  return typed === '.' || /^\/+$/.test(typed) || typed === './' ? '' : remotePath(typed, what);
}

export interface FilesIo {
  stdin: Readable & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** `kernelfleet files`: the exit code as documented in FILES_USAGE. */
export async function filesCommand(argv: string[], io: FilesIo): Promise<number> {
  const request = parseFiles(argv);
  const files = new KernelfleetClient(request.target(io.env)).files;
  try {
    return await run(files, request, io);
  } catch (error) {
    // Unreachable api (KernelfleetConnectionError) and usage errors go on to main, as for the other commands.
    const local = typeof (error as NodeJS.ErrnoException).syscall === 'string' || error instanceof TarError;
    if (!(error instanceof KernelfleetError) && !local) throw error;
    io.stderr.write(`kernelfleet files ${request.verb}: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
}

async function run(files: SessionFiles, request: ParsedFiles, io: FilesIo): Promise<number> {
  const { sessionId, timeoutMs } = request;
  switch (request.verb) {
    case 'put': {
      let written;
      if (request.local === '-') {
        if (io.stdin.isTTY) throw new UsageError('files put: LOCAL is - but standard input is a terminal (pipe the content in)');
        written = await files.write(sessionId, request.remote, Readable.toWeb(io.stdin) as unknown as ReadableStream<Uint8Array>, { timeoutMs });
      } else {
        localKind(request.local, 'file', 'files put');
        written = await files.writeFile(sessionId, request.remote, request.local, { timeoutMs });
      }
      io.stdout.write(`${written.created ? 'created' : 'replaced'} ${written.path}: ${written.size} bytes, sha256 ${written.sha256}\n`);
      return EXIT.ok;
    }
    case 'get':
      if (request.local !== '-') {
        await files.readFile(sessionId, request.remote, request.local, { timeoutMs });
        return EXIT.ok;
      }
      await copyTo(await files.readStream(sessionId, request.remote, { timeoutMs }), io.stdout);
      return EXIT.ok;
    case 'ls':
      for await (const file of files.listAll(sessionId, { prefix: request.prefix, timeoutMs })) {
        io.stdout.write(`${String(file.size).padStart(12)}  ${new Date(file.modifiedAt).toISOString().slice(0, 19).replace('T', ' ')}  ${file.path}\n`);
      }
      return EXIT.ok;
    case 'rm':
      if (await files.remove(sessionId, request.remote, { timeoutMs })) {
        io.stdout.write(`removed ${request.remote}\n`);
        return EXIT.ok;
      }
      io.stderr.write(`kernelfleet files rm: session ${sessionId} has no ${request.remote}\n`);
      return EXIT.failed;
    case 'push': {
      localKind(request.localDir, 'folder', 'files push');
      const { files: count, bytes } = await files.syncUp(sessionId, request.localDir, request.remoteDir, { timeoutMs });
      io.stdout.write(`pushed ${count} file(s), ${bytes} bytes, to ${request.remoteDir || 'the session’s folder'}\n`);
      return EXIT.ok;
    }
    case 'pull': {
      const { files: count, bytes } = await files.syncDown(sessionId, request.remoteDir, request.localDir, { timeoutMs });
      io.stdout.write(`pulled ${count} file(s), ${bytes} bytes, into ${request.localDir}\n`);
      return EXIT.ok;
    }
  }
}

/** A local operand that is not what the command needs is a mistake in the command line. */
function localKind(path: string, kind: 'file' | 'folder', what: string): void {
  let found;
  try {
    found = statSync(path);
  } catch (error) {
    throw new UsageError(`${what}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (kind === 'file' ? !found.isFile() : !found.isDirectory()) throw new UsageError(`${what}: ${path} is not a ${kind}`);
}

async function copyTo(stream: ReadableStream<Uint8Array>, out: NodeJS.WritableStream): Promise<void> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    if (!out.write(value)) await once(out, 'drain');
  }
}
