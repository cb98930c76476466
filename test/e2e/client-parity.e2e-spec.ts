import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelfleetClient, sessionIdForFolder, type DisplayOutput, type PythonResult } from '@kernelfleet/client';
import { Stack } from '../support/stack';

/**
 * The original executor's pinned behaviours (seed-behaviour.md §4) that make sense across
 * machines, through the client's drop-in `executePython(code, options)`, with the original's
 * results: cancellations and timeouts are results (`cancelled`, `exitCode` undefined), the
 * notices are the original's words, output reaches `onChunk` as it comes.
 */

jest.setTimeout(90_000);

// The original's messages, word for word (seed §2.7; the worker's NOTICES).
const STDIN_NOTICE = '[Kernel requested stdin; interactive input is not supported.]';
const interruptedNotice = (seconds: number) =>
  `[eval cell timed out after ${seconds}s; kernel interrupted but remains running. ` + 'Reset the kernel via { reset: true } if state appears corrupted.]';

/** A 1×1 PNG. */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fetch that counts the requests the client sends. */
function countingFetch(): { count: () => number; fetch: typeof fetch } {
  let n = 0;
  return { count: () => n, fetch: ((input: string | URL | Request, init?: RequestInit) => ((n += 1), fetch(input, init))) as typeof fetch };
}

describe('executePython: the original executor’s behaviours', () => {
  let stack: Stack;
  let client: KernelfleetClient;

  beforeAll(async () => {
    stack = await Stack.start();
    client = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** Runs code in a session and answers the result, with the chunks onChunk heard. */
  async function run(sessionId: string, code: string, options: Parameters<KernelfleetClient['executePython']>[1] = {}) {
    const chunks: string[] = [];
    const result = await client.executePython(code, {
      sessionId,
      ...options,
      onChunk: (text) => {
        chunks.push(text);
        options.onChunk?.(text);
      },
    });
    return { result, chunks };
  }

  /** Polls until the session's kernel has been shut down (a disposal ends it once it is idle). */
  async function kernelGone(sessionId: string): Promise<void> {
    const until = Date.now() + 15_000;
    while ((await client.getSession(sessionId))?.workerId) {
      if (Date.now() > until) throw new Error(`session ${sessionId} still has a kernel`);
      await sleep(100);
    }
  }

  /** Polls until the session has `n` pending (queued or running) executions. */
  async function pendingIs(sessionId: string, n: number): Promise<void> {
    const until = Date.now() + 15_000;
    while ((await client.getSession(sessionId))?.pending !== n) {
      if (Date.now() > until) throw new Error(`session ${sessionId} never had ${n} pending`);
      await sleep(25);
    }
  }

  it('1: text reaches onChunk as it comes, display outputs are kept in order', async () => {
    const code = [
      'from IPython.display import display, Markdown',
      'import time',
      "print('first', flush=True)",
      'time.sleep(0.5)',
      "display(Markdown('**middle**'))",
      "display({'application/json': {'n': 1}, 'text/plain': 'n=1'}, raw=True)",
      'time.sleep(0.5)',
      "print('last')",
    ].join('\n');
    let firstArrived = 0;
    const { result, chunks } = await run('p1-capture', code, { onChunk: () => (firstArrived ||= Date.now()) });
    expect(result).toMatchObject({ exitCode: 0, cancelled: false, truncated: false, status: 'completed' });
    expect(result.output).toBe('first\n**middle**\nn=1\nlast\n');
    expect(chunks.join('')).toBe(result.output);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    // Live: the first line was heard before the cell ended (a second later, in the kernel).
    const { timings } = await client.getExecution(result.executionId!);
    expect(firstArrived).toBeLessThan(timings.finishedAt!);
    expect(result.displayOutputs).toEqual([
      { type: 'text', text: '**middle**\n', markdown: true },
      { type: 'json', data: { n: 1 } },
      { type: 'text', text: 'n=1\n', markdown: false },
    ] satisfies DisplayOutput[]);
    expect(result).toMatchObject({ totalLines: 5, totalBytes: Buffer.byteLength(result.output), outputLines: 5, outputBytes: Buffer.byteLength(result.output) });
  });

  it('2: input() → exit 1, stdinRequested, the notice first; the kernel is not left blocked', async () => {
    const { result } = await run('p2-stdin', "kept = 7\nprint('asking')\nname = input('name? ')\nprint('unreachable')");
    expect(result).toMatchObject({ exitCode: 1, stdinRequested: true, cancelled: false, status: 'failed' });
    expect(result.output.split('\n')[0]).toBe(STDIN_NOTICE);
    expect(result.output).toContain('asking\n');
    expect(result.output).not.toContain('unreachable');
    const next = await run('p2-stdin', 'print(kept * 6)');
    expect(next.result).toMatchObject({ output: '42\n', exitCode: 0, stdinRequested: false });
  });

  it('3: a Python error → exit 1, not cancelled, the traceback in the output', async () => {
    const { result, chunks } = await run('p3-error', "print('partial')\ndef explode():\n    raise ValueError('boom 42')\nexplode()");
    expect(result).toMatchObject({ exitCode: 1, cancelled: false, stdinRequested: false, status: 'failed' });
    expect(result.output.startsWith('partial\n')).toBe(true);
    expect(result.output).toMatch(/ValueError\b.*boom 42/);
    expect(result.output).toContain('explode');
    expect(chunks[0]).toBe('partial\n');
  });

  it('4: ANSI escapes and \\r are stripped, in the result and in every chunk', async () => {
    const { result, chunks } = await run('p4-ansi', "print('\\x1b[31mred\\x1b[0m\\r', flush=True)\nprint('\\x1b[1;32mgreen\\x1b[0m')");
    expect(result.output).toBe('red\ngreen\n');
    expect(chunks.join('')).toBe('red\ngreen\n');
    for (const chunk of chunks) expect(chunk).not.toMatch(/\x1b|\r/);
  });

  it('5: timeouts of 4.1 s / 5 s / 2 s → "timed out after 4s|5s|2s" first, cancelled, exitCode undefined; the kernel and its globals survive', async () => {
    const cases = [
      { timeoutMs: 4_100, seconds: 4 },
      { timeoutMs: 5_000, seconds: 5 },
      { timeoutMs: 2_000, seconds: 2 },
    ];
    await Promise.all(
      cases.map(async ({ timeoutMs, seconds }) => {
        const session = `p5-timeout-${timeoutMs}`;
        // A warm kernel, so the whole budget goes to the cell.
        await run(session, "kept = 'still here'");
        const { result, chunks } = await run(session, "print('started', flush=True)\nimport time\ntime.sleep(60)\nprint('never')", { timeoutMs });
        expect({ timeoutMs, ...result }).toMatchObject({ timeoutMs, cancelled: true, exitCode: undefined, status: 'timed_out' });
        const lines = result.output.split('\n');
        expect(lines[0]).toBe(interruptedNotice(seconds));
        expect(lines.slice(1)).toContain('started');
        expect(result.output).not.toContain('never');
        // The output came live, before the cell ended; the notice is the result's alone.
        expect(chunks).toEqual(['started\n']);

        const next = await run(session, 'print(kept)');
        expect(next.result.output).toBe('still here\n');
        expect(next.result.kernel).toMatchObject({ generation: result.kernel!.generation, restarted: false, stateLost: false });
      }),
    );
  });

  it('6: an abort that is not a timeout keeps the partial output, with no timeout note', async () => {
    const controller = new AbortController();
    await run('p6-abort', 'warm = 1');
    const { result } = await run('p6-abort', "print('partial', flush=True)\nimport time\ntime.sleep(30)\nprint('never')", {
      signal: controller.signal,
      timeoutMs: 60_000,
      onChunk: () => controller.abort(),
    });
    expect(result).toMatchObject({ cancelled: true, exitCode: undefined, status: 'cancelled' });
    expect(result.output.startsWith('partial\n')).toBe(true);
    expect(result.output).not.toMatch(/timed out|never/);
  });

  it('7: 1.5 × 50 KB of output → truncated; artifactPath receives the full output byte for byte', async () => {
    const count = 768; // 768 lines × 100 bytes = 75 KB
    const expected = Array.from({ length: count }, (_, i) => `${String(i).padStart(5, '0')} ${'y'.repeat(93)}\n`).join('');
    expect(expected.length).toBe(1.5 * 50 * 1024);
    const code = [
      'import sys',
      `for _b in range(0, ${count}, 100):`,
      `    sys.stdout.write(''.join(f'{_i:05d} ' + 'y' * 93 + '\\n' for _i in range(_b, min(_b + 100, ${count}))))`,
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'kf-artifact-'));
    try {
      const artifactPath = join(dir, 'output.txt');
      const { result, chunks } = await run('p7-large', code, { artifactPath });
      expect(result).toMatchObject({ exitCode: 0, truncated: true, artifactPath, totalBytes: expected.length, totalLines: count + 1 });
      expect(result.artifactId).toEqual(expect.any(String));
      expect(result.output.length).toBeLessThan(expected.length);
      expect(result.output.startsWith(expected.slice(0, 20 * 1024))).toBe(true);
      expect(result.output.endsWith(expected.slice(-50 * 1024))).toBe(true);
      const file = readFileSync(artifactPath);
      expect(file.length).toBe(expected.length);
      expect(file.equals(Buffer.from(expected))).toBe(true);
      // The live stream carried all of it, not the result's cut.
      expect(chunks.join('') === expected).toBe(true);
      // Without artifactPath the artifact can be fetched as text.
      expect((await client.artifact(result.executionId!)) === expected).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('9: a deadline already passed → cancelled, "Command timed out", nothing sent', async () => {
    const counting = countingFetch();
    const local = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey, fetch: counting.fetch });
    const result = await local.executePython('flag9 = True', { sessionId: 'p9-passed', deadlineMs: Date.now() - 1 });
    expect(result).toMatchObject({ output: 'Command timed out', cancelled: true, exitCode: undefined, status: 'timed_out', sessionId: 'p9-passed' });
    expect(result.executionId).toBeUndefined();
    expect(counting.count()).toBe(0);
    expect(await client.getSession('p9-passed')).toBeNull();
  });

  it('9: a deadline that passes while the execution waits its turn → the same, and it never runs', async () => {
    const session = 'p9-queue';
    await run(session, 'warm = 1');
    const blocker = client.executePython("import time\ntime.sleep(3)\nprint('first done')", { sessionId: session });
    await sleep(300);
    const late = await client.executePython('flag9 = True', { sessionId: session, deadlineMs: Date.now() + 700 });
    expect(late).toMatchObject({ output: 'Command timed out', cancelled: true, exitCode: undefined, status: 'timed_out' });
    expect((await blocker).output).toBe('first done\n');
    expect((await run(session, "print('flag9' in globals())")).result.output).toBe('False\n');
  });

  it('10: aborted before the start → cancelled, empty output, nothing sent', async () => {
    const counting = countingFetch();
    const local = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey, fetch: counting.fetch });
    const controller = new AbortController();
    controller.abort();
    const chunks: string[] = [];
    const result = await local.executePython("print('no')", { sessionId: 'p10-aborted', signal: controller.signal, onChunk: (t) => chunks.push(t) });
    expect(result).toMatchObject({ output: '', cancelled: true, exitCode: undefined, status: 'cancelled', displayOutputs: [] });
    expect(result.executionId).toBeUndefined();
    expect(chunks).toEqual([]);
    expect(counting.count()).toBe(0);
  });

  it('12: the same session reuses one kernel; per-call executions each get a fresh one and leave the session’s alone', async () => {
    const session = 'p12-reuse';
    const results: PythonResult[] = [];
    for (const code of ['x = 1', 'x += 1', 'x += 1', 'print(x)']) results.push((await run(session, code)).result);
    expect(results[3].output).toBe('3\n');
    expect(results[0].kernel).toMatchObject({ restarted: true });
    const { generation, workerId } = results[0].kernel!;
    for (const later of results.slice(1)) expect(later.kernel).toMatchObject({ generation, workerId, restarted: false, stateLost: false });

    const perCall: PythonResult[] = [];
    for (const code of ["y = 'per-call'\nprint('x' in globals())", "print('y' in globals())"]) perCall.push((await run(session, code, { kernelMode: 'per-call' })).result);
    expect(perCall.map((r) => r.output)).toEqual(['False\n', 'False\n']);
    for (const r of perCall) expect(r.kernel).toMatchObject({ restarted: true });

    const after = await run(session, "print(x, 'y' in globals())");
    expect(after.result.output).toBe('3 False\n');
    expect(after.result.kernel).toMatchObject({ generation, restarted: false });
  });

  it('13: reset → a new kernel before the code runs; the old globals are gone', async () => {
    const session = 'p13-reset';
    const before = await run(session, 'old = 1');
    const reset = await run(session, "print('old' in globals())\nnew = 2", { reset: true });
    expect(reset.result.output).toBe('False\n');
    expect(reset.result.kernel).toMatchObject({ generation: before.result.kernel!.generation + 1, restarted: true, stateLost: false });
    const after = await run(session, "print(new, 'old' in globals())");
    expect(after.result.output).toBe('2 False\n');
    expect(after.result.kernel).toMatchObject({ generation: reset.result.kernel!.generation, restarted: false });
  });

  it('16: a queued execution aborted while it waits → cancelled, empty output, never ran; the running one is unaffected', async () => {
    const session = 'p16-queued';
    await run(session, 'warm = 1');
    const running = run(session, "print('a-start', flush=True)\nimport time\ntime.sleep(2)\nprint('a-end')");
    await pendingIs(session, 1);
    const controller = new AbortController();
    const waiting = run(session, "flag16 = True\nprint('ran')", { signal: controller.signal });
    await pendingIs(session, 2);
    controller.abort();

    const aborted = await waiting;
    expect(aborted.result).toMatchObject({ output: '', cancelled: true, exitCode: undefined, status: 'cancelled' });
    expect(aborted.chunks).toEqual([]);
    expect((await client.getExecution(aborted.result.executionId!)).timings.startedAt).toBeUndefined();

    const first = await running;
    expect(first.result).toMatchObject({ output: 'a-start\na-end\n', exitCode: 0, cancelled: false, status: 'completed' });
    const check = await run(session, "print('flag16' in globals(), warm)");
    expect(check.result.output).toBe('False 1\n');
    expect(check.result.kernel).toMatchObject({ generation: first.result.kernel!.generation, restarted: false });
  });

  it('17: owners A and B share a kernel: it survives disposing A and is shut down after disposing B', async () => {
    const session = 'p17-shared';
    const first = await run(session, 'kept = 41', { kernelOwnerId: 'p17-alice' });
    await run(session, 'pass', { kernelOwnerId: 'p17-bob' });

    expect(await client.disposeKernelSessionsByOwner('p17-alice')).toEqual({ ownerId: 'p17-alice', disposed: [], detached: [session] });
    const survived = await run(session, 'print(kept + 1)', { kernelOwnerId: 'p17-bob' });
    expect(survived.result.output).toBe('42\n');
    expect(survived.result.kernel).toMatchObject({ generation: first.result.kernel!.generation, restarted: false });

    expect(await client.disposeKernelSessionsByOwner('p17-bob')).toEqual({ ownerId: 'p17-bob', disposed: [session], detached: [] });
    await kernelGone(session);
    const fresh = await run(session, "print('kept' in globals())", { kernelOwnerId: 'p17-bob' });
    expect(fresh.result.output).toBe('False\n');
    expect(fresh.result.kernel!.generation).toBeGreaterThan(first.result.kernel!.generation);
  });

  it('18: disposing owner A shuts down all of A’s sessions and none of B’s', async () => {
    const before = new Map<string, PythonResult>();
    for (const [session, owner] of [
      ['p18-ann-1', 'p18-ann'],
      ['p18-ann-2', 'p18-ann'],
      ['p18-ben-1', 'p18-ben'],
    ]) {
      before.set(session, (await run(session, `tag = '${session}'`, { kernelOwnerId: owner })).result);
    }
    expect(await client.disposeKernelSessionsByOwner('p18-ann')).toEqual({ ownerId: 'p18-ann', disposed: ['p18-ann-1', 'p18-ann-2'], detached: [] });
    for (const session of ['p18-ann-1', 'p18-ann-2']) {
      await kernelGone(session);
      const after = await run(session, "print('tag' in globals())", { kernelOwnerId: 'p18-ann' });
      expect({ session, output: after.result.output }).toEqual({ session, output: 'False\n' });
    }
    const ben = await run('p18-ben-1', 'print(tag)', { kernelOwnerId: 'p18-ben' });
    expect(ben.result.output).toBe('p18-ben-1\n');
    expect(ben.result.kernel).toMatchObject({ generation: before.get('p18-ben-1')!.kernel!.generation, restarted: false });
  });

  it('19: without an owner id the session id is the owner; an owner holding nothing gets empty lists, not an error', async () => {
    await run('p19-solo', 'x = 1');
    expect(await client.disposeKernelSessionsByOwner('p19-solo')).toEqual({ ownerId: 'p19-solo', disposed: ['p19-solo'], detached: [] });
    await kernelGone('p19-solo');
    expect((await run('p19-solo', "print('x' in globals())")).result.output).toBe('False\n');

    expect(await client.disposeKernelSessionsByOwner('p19-nobody')).toEqual({ ownerId: 'p19-nobody', disposed: [], detached: [] });
    // Disposed once, the owner holds nothing any more: the second dispose is no error either.
    await run('p19-twice', 'pass', { kernelOwnerId: 'p19-once' });
    expect((await client.disposeKernelSessionsByOwner('p19-once')).disposed).toEqual(['p19-twice']);
    expect(await client.disposeKernelSessionsByOwner('p19-once')).toEqual({ ownerId: 'p19-once', disposed: [], detached: [] });
  });

  describe('23: rich display', () => {
    const code = [
      'from IPython.display import display, HTML',
      "display({'application/x-kernelfleet-status': {'phase': 'loading'}, 'text/plain': 'STATUS-TEXT'}, raw=True)",
      "display({'text/markdown': '**md**', 'text/plain': 'plain md'}, raw=True)",
      `display({'image/png': '${PNG_1X1}', 'text/plain': '<Figure 1x1>'}, raw=True)`,
      "display({'application/json': {'a': [1, 2]}, 'text/plain': 'a=[1, 2]'}, raw=True)",
      "display(HTML('<p><strong>Hello</strong></p>'))",
    ].join('\n');
    const displays: DisplayOutput[] = [
      { type: 'text', text: '**md**\n', markdown: true },
      { type: 'image', mimeType: 'image/png', data: PNG_1X1 },
      { type: 'text', text: '<Figure 1x1>\n', markdown: false },
      { type: 'json', data: { a: [1, 2] } },
      { type: 'text', text: 'a=[1, 2]\n', markdown: false },
      { type: 'text', text: '**Hello**\n', markdown: true },
    ];

    it('with emitStatus: the status MIME goes there only (no text, not in displayOutputs); markdown beats plain; png+plain, json+plain; html → **Hello**', async () => {
      const statuses: unknown[] = [];
      const { result, chunks } = await run('p23-display', code, { emitStatus: (event) => statuses.push(event) });
      expect(result.status).toBe('completed');
      expect(statuses).toEqual([{ phase: 'loading' }]);
      expect(result.displayOutputs).toEqual(displays);
      expect(result.output).toBe('**md**\n<Figure 1x1>\na=[1, 2]\n**Hello**\n');
      expect(result.output).not.toContain('STATUS-TEXT');
      expect(result.output).not.toContain('plain md');
      expect(chunks.join('')).toBe(result.output);
    });

    it('without emitStatus: the status is kept in displayOutputs, in its place', async () => {
      const { result } = await run('p23-display', code);
      expect(result.displayOutputs).toEqual([{ type: 'status', event: { phase: 'loading' } }, ...displays]);
    });
  });

  describe('25: a real kernel', () => {
    it('streams stdout in several chunks, in order', async () => {
      const { result, chunks } = await run('p25-stream', "import time\nfor i in range(4):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.3)");
      expect(chunks.length).toBeGreaterThanOrEqual(2);
      expect(chunks.join('')).toBe('tick 0\ntick 1\ntick 2\ntick 3\n');
      expect(result.output).toBe('tick 0\ntick 1\ntick 2\ntick 3\n');
    });

    it('an abort interrupts time.sleep(30) in well under 10 s; the kernel stays usable and keeps its globals', async () => {
      const session = 'p25-interrupt';
      await run(session, 'x = 41');
      const controller = new AbortController();
      let abortedAt = 0;
      const { result } = await run(session, "print('sleeping', flush=True)\nimport time\ntime.sleep(30)", {
        signal: controller.signal,
        onChunk: () => {
          abortedAt = Date.now();
          controller.abort();
        },
      });
      expect(Date.now() - abortedAt).toBeLessThan(10_000);
      expect(result).toMatchObject({ cancelled: true, exitCode: undefined, status: 'cancelled' });
      const next = await run(session, 'print(x + 1)');
      expect(next.result.output).toBe('42\n');
      expect(next.result.kernel).toMatchObject({ restarted: false, stateLost: false });
    });

    it('runs top-level await', async () => {
      const { result } = await run('p25-await', "import asyncio\nawait asyncio.sleep(0.01)\nprint('awaited', await asyncio.sleep(0, result=7))");
      expect(result).toMatchObject({ output: 'awaited 7\n', exitCode: 0 });
    });

    it('an exception gives its name and message', async () => {
      const { result } = await run('p25-exception', "raise KeyError('missing key')");
      expect(result).toMatchObject({ exitCode: 1, cancelled: false, status: 'failed' });
      expect(result.output).toMatch(/KeyError\b.*'missing key'/);
      const custom = await run('p25-exception', "class QuotaError(Exception):\n    pass\nraise QuotaError('over the limit')");
      expect(custom.result.output).toMatch(/QuotaError\b.*over the limit/);
    });
  });

  describe('the default session, from cwd', () => {
    it('two folders are two sessions, the same folder is the same session', async () => {
      const a = '/srv/p-cwd/project';
      const b = '/home/p-cwd/project';
      const first = await client.executePython('v = 1', { cwd: a });
      expect(first.sessionId).toBe(sessionIdForFolder(a));
      const other = await client.executePython("print('v' in globals())", { cwd: b });
      expect(other.sessionId).toBe(sessionIdForFolder(b));
      expect(other.sessionId).not.toBe(first.sessionId);
      expect(other.output).toBe('False\n');
      const again = await client.executePython('print(v)', { cwd: a });
      expect(again.sessionId).toBe(first.sessionId);
      expect(again.output).toBe('1\n');
      expect(again.kernel).toMatchObject({ generation: first.kernel!.generation, restarted: false });
      expect((await client.executePython('print(v)', { cwd: `${a}/` })).output).toBe('1\n');
    });

    it('without cwd it is the process’s working folder', async () => {
      const result = await client.executePython('print(1)');
      expect(result.sessionId).toBe(sessionIdForFolder(process.cwd()));
    });
  });
});
