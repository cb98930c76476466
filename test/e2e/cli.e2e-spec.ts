import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack } from '../support/stack';

/**
 * The `kernelfleet` CLI as a user runs it: the repo's bin in a child process against the real
 * stack, its output read as it comes.
 */
const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'kernelfleet.js');

/** A running CLI process: what it printed so far, and how it ended. */
class Cli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!pattern.test(this[stream])) {
      if (Date.now() > until) throw new Error(`no ${pattern} on ${stream}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe('kernelfleet CLI', () => {
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  const work = mkdtempSync(join(tmpdir(), 'kf-cli-'));

  beforeAll(async () => {
    stack = await Stack.start();
    env = { ...process.env, KERNELFLEET_URL: stack.url, KERNELFLEET_API_KEY: stack.apiKey };
  });
  afterAll(() => stack?.stop());

  /** The CLI with pipes for stdin, stdout and stderr. */
  function cli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Cli {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: work, env: opts.env ?? env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin?.end(opts.input ?? '');
    return new Cli(child);
  }

  /** The CLI on a terminal of its own (`script` gives it a pty): Ctrl-C is a byte typed into it. */
  function cliOnTerminal(args: string[]): Cli {
    const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-q', '-e', '-f', '-c', command, '/dev/null'], { cwd: work, env, stdio: ['pipe', 'pipe', 'pipe'] });
    return new Cli(child);
  }

  it('streams output live, before the cell ends, and exits 0', async () => {
    const file = join(work, 'live.py');
    writeFileSync(file, "import time\nprint('first', flush=True)\ntime.sleep(4)\nprint('second')\n");
    const run = cli(['run', file, '--session', 'cli-live']);
    await run.waitFor(/first/);
    expect(run.stdout).not.toMatch(/second/);
    expect(run.running).toBe(true);
    expect(await run.exited).toBe(0);
    expect(run.stdout).toBe('first\nsecond\n');
  });

  it('reads code from standard input, keeps the session, and exits 1 on a Python error with its traceback on stderr', async () => {
    expect(await cli(['run', '-', '--session', 'cli-errors'], { input: 'x = 41\n' }).exited).toBe(0);
    const ok = cli(['run', '--session', 'cli-errors'], { input: 'print(x + 1)\n' });
    expect(await ok.exited).toBe(0);
    expect(ok.stdout).toBe('42\n');
    const failing = cli(['run', '--session', 'cli-errors'], { input: "print('before')\nraise ValueError('bad value')\n" });
    expect(await failing.exited).toBe(1);
    expect(failing.stdout).toBe('before\n');
    expect(failing.stderr).toMatch(/ValueError.*bad value/);
  });

  it('exits 124 when the execution times out, saying so on stderr', async () => {
    const run = cli(['run', '--session', 'cli-timeout', '--timeout', '2000'], { input: "import time\nprint('started', flush=True)\ntime.sleep(30)\n" });
    expect(await run.exited).toBe(124);
    expect(run.stdout).toBe('started\n');
    expect(run.stderr).toMatch(/\[eval cell timed out after 2s; kernel interrupted but remains running/);
  });

  it('Ctrl-C on the terminal cancels the execution on the server and exits 130', async () => {
    writeFileSync(join(work, 'slow.py'), "import time\nprint('running', flush=True)\nfor _ in range(600):\n    time.sleep(0.1)\nfinished = True\n");
    const run = cliOnTerminal(['run', '--session', 'cli-ctrl-c', join(work, 'slow.py')]);
    await run.waitFor(/running/);
    run.child.stdin?.write('\x03');
    expect(await run.exited).toBe(130);
    expect(run.stdout).toMatch(/cancelling the execution/);
    // The cell was interrupted, not left running: the session's kernel is free at once and
    // the code after the loop never ran.
    const after = cli(['run', '--session', 'cli-ctrl-c', '--timeout', '10000'], { input: "print('finished' in globals())\n" });
    expect(await after.exited).toBe(0);
    expect(after.stdout).toBe('False\n');
  });

  it('prints the terminal execution as JSON with --json', async () => {
    const run = cli(['run', '--session', 'cli-json', '--json'], { input: "print('hi')\n" });
    expect(await run.exited).toBe(0);
    const execution = JSON.parse(run.stdout);
    expect(execution).toMatchObject({ sessionId: 'cli-json', status: 'completed', result: { output: 'hi\n', exitCode: 0 } });
  });

  it('shows and disposes of sessions', async () => {
    expect(await cli(['run', '--session', 'cli-session', '--owner', 'agent-7'], { input: 'y = 1\n' }).exited).toBe(0);
    const show = cli(['session', 'show', 'cli-session']);
    expect(await show.exited).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ sessionId: 'cli-session', owners: ['agent-7'], kernel: { state: 'idle' } });
    const rm = cli(['session', 'rm', 'cli-session']);
    expect(await rm.exited).toBe(0);
    expect(rm.stdout).toMatch(/disposed session cli-session/);
    const unknown = cli(['session', 'show', 'no-such-session']);
    expect(await unknown.exited).toBe(1);
    expect(unknown.stderr).toMatch(/no session no-such-session/);
  });

  it('writes the artifact of a truncated execution', async () => {
    const run = cli(['run', '--session', 'cli-artifact', '--json'], { input: "for i in range(4000):\n    print(f'line {i:05d} ' + 'x' * 20)\n" });
    expect(await run.exited).toBe(0);
    const execution = JSON.parse(run.stdout);
    expect(execution.result.truncated).toBe(true);
    const file = join(work, 'artifact.txt');
    expect(await cli(['artifact', execution.executionId, file]).exited).toBe(0);
    const expected = Array.from({ length: 4000 }, (_, i) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(20)}\n`).join('');
    expect(readFileSync(file, 'utf8')).toBe(expected);
  });

  it('refuses a missing api, a bad option and an unknown key with exit code 2 and a clear message', async () => {
    const noUrl = cli(['run', '--session', 's'], { input: 'print(1)\n', env: { ...process.env, KERNELFLEET_URL: '', KERNELFLEET_API_KEY: '' } });
    expect(await noUrl.exited).toBe(2);
    expect(noUrl.stderr).toMatch(/no api: give --url or set KERNELFLEET_URL/);
    const badOption = cli(['run', '--sesion', 's'], { input: 'print(1)\n' });
    expect(await badOption.exited).toBe(2);
    expect(badOption.stderr).toMatch(/unknown option "--sesion"/);
    const badKey = cli(['run', '--session', 's', '--key', 'not-a-key'], { input: 'print(1)\n' });
    expect(await badKey.exited).toBe(2);
    expect(badKey.stderr).toMatch(/the api refused: 401/);
  });
});
