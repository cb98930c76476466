import { KernelfleetConnectionError, KernelfleetError } from '@kernelfleet/client';
import { UsageError } from './cli-args';
import { EXIT } from './exit-codes';
import { FILES_USAGE, filesCommand } from './files';
import { keysCommand } from './keys';
import { quotasCommand } from './quotas';
import { RUN_USAGE, runCommand } from './run-command';
import { artifactCommand, SESSION_USAGE, sessionCommand } from './session-command';

/**
 * `kernelfleet` (the repo's bin; `npx kernelfleet …` from a checkout): runs Python through the
 * api with the client library, manages sessions, and, against Redis directly, API keys and
 * tenant quotas. Exit codes: exit-codes.ts.
 */
const USAGE = `usage: kernelfleet <command> …

  run [file|-] [--session ID] [--timeout ms] [--json]   run Python, streaming its output
  session show|rm …                                     look at or dispose of sessions
  artifact EXECUTION_ID [FILE]                          the full output of a truncated execution
  files put|get|ls|rm|push|pull SESSION …               a session's files, and whole folders
  keys create|list|revoke …                             API keys in Redis (admin; REDIS_URL)
  quotas set|show|clear|repair …                        tenant quotas in Redis (admin; REDIS_URL)

The api commands take --url and --key, or KERNELFLEET_URL and KERNELFLEET_API_KEY (npm start
prints both). \`kernelfleet <command> --help\` says more.`;

const HELP: Record<string, string> = { run: RUN_USAGE, session: SESSION_USAGE, artifact: SESSION_USAGE, files: FILES_USAGE };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (HELP[command] && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`${HELP[command]}\n`);
    return EXIT.ok;
  }
  const io = { stdout: process.stdout, stderr: process.stderr, env: process.env };
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest, {
          ...io,
          stdin: process.stdin,
          cwd: process.cwd(),
          onInterrupt: (handler) => {
            process.on('SIGINT', handler);
            return () => process.off('SIGINT', handler);
          },
          exit: (code) => process.exit(code),
        });
      case 'session':
        return await sessionCommand(rest, io);
      case 'artifact':
        return await artifactCommand(rest, io);
      case 'files':
        return await filesCommand(rest, { ...io, stdin: process.stdin });
      case 'keys':
        return await keysCommand(rest);
      case 'quotas':
        return await quotasCommand(rest);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`kernelfleet ${error.message}\n\n${HELP[command] ?? USAGE}\n`);
      return EXIT.usage;
    }
    if (error instanceof KernelfleetError) {
      process.stderr.write(`kernelfleet: the api refused: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof KernelfleetConnectionError) {
      process.stderr.write(`kernelfleet: ${error.message}\n`);
      return EXIT.unreachable;
    }
    throw error;
  }
}

void main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Open keep-alive connections must not hold the answer back.
    setTimeout(() => process.exit(code), 1_000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`kernelfleet failed: ${(error as Error).stack ?? error}\n`);
    process.exitCode = 1;
  },
);
