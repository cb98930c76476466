import { KernelfleetClient } from '@kernelfleet/client';
import { apiTarget, parseArgs, UsageError } from './cli-args';
import { EXIT } from './exit-codes';

export const SESSION_USAGE = `usage: kernelfleet session show ID | rm ID | rm --owner OWNER | rm --all
       kernelfleet artifact EXECUTION_ID [FILE]

  session show ID       the session as JSON: home worker, kernel, pending executions, owners
  session rm ID         dispose of the session: queued executions cancelled, a running one
                        ended, the kernel shut down
  session rm --owner O  dispose of the sessions O alone holds; shared ones only lose O
  session rm --all      dispose of every session of this API key's tenant
  artifact ID [FILE]    the full output of an execution whose output was truncated (to stdout,
                        or written to FILE)
  --url, --key          the api and an API key (else KERNELFLEET_URL, KERNELFLEET_API_KEY)`;

interface Out {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export async function sessionCommand(argv: string[], io: Out): Promise<number> {
  const [verb, ...rest] = argv;
  const args = parseArgs(rest, ['owner', 'url', 'key'], ['all'], `session ${verb ?? ''}`.trim());
  const client = new KernelfleetClient(apiTarget(args, io.env, 'session'));
  const [sessionId, extra] = args.operands;
  if (extra !== undefined) throw new UsageError(`session: unexpected argument "${extra}"`);
  const owner = args.values.get('owner');
  const all = args.flags.has('all');
  if (verb === 'show') {
    if (!sessionId || owner || all) throw new UsageError('session show: needs exactly one session ID');
    const session = await client.getSession(sessionId);
    if (!session) {
      io.stderr.write(`kernelfleet: no session ${sessionId}\n`);
      return EXIT.failed;
    }
    io.stdout.write(`${JSON.stringify(session, null, 2)}\n`);
    return EXIT.ok;
  }
  if (verb !== 'rm') throw new UsageError(verb ? `session: unknown command "${verb}"` : 'session: missing command (show or rm)');
  if ([sessionId !== undefined, owner !== undefined, all].filter(Boolean).length !== 1) {
    throw new UsageError('session rm: give one of ID, --owner OWNER, --all');
  }
  if (all) {
    const { disposed } = await client.disposeAllKernelSessions();
    io.stdout.write(disposed.length ? `disposed ${disposed.length} session(s): ${disposed.join(' ')}\n` : 'no sessions to dispose\n');
  } else if (owner !== undefined) {
    const { disposed, detached } = await client.disposeKernelSessionsByOwner(owner);
    io.stdout.write(`owner ${owner}: disposed ${disposed.length} session(s)${disposed.length ? ` (${disposed.join(' ')})` : ''}, left ${detached.length} shared one(s)${detached.length ? ` (${detached.join(' ')})` : ''}\n`);
  } else {
    const { cancelled } = await client.deleteSession(sessionId!);
    io.stdout.write(`disposed session ${sessionId}; ${cancelled} queued execution(s) cancelled\n`);
  }
  return EXIT.ok;
}

export async function artifactCommand(argv: string[], io: Out): Promise<number> {
  const args = parseArgs(argv, ['url', 'key'], [], 'artifact');
  const [executionId, file, extra] = args.operands;
  if (!executionId || extra !== undefined) throw new UsageError('artifact: needs an execution ID and at most one FILE');
  const client = new KernelfleetClient(apiTarget(args, io.env, 'artifact'));
  if (file) await client.downloadArtifact(executionId, file);
  else io.stdout.write(await client.artifact(executionId));
  return EXIT.ok;
}
