import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Execution } from '@kernelfleet/contracts';
import { ExternalJupyter, kernelIdIn, PRINT_KERNEL_ID } from '../support/external-jupyter';
import { Stack, TEST_TENANT } from '../support/stack';

/**
 * Kernel starts, reuse, shutdowns and replacements (seed-behaviour.md §4: 8, 10–15), observed on
 * a Jupyter server the test owns: every kernel the worker starts is listed there, and each
 * execution prints the id of the kernel it ran on. Tests run one after another in this file, so
 * a listing taken at the start of a test is that test's baseline.
 */

jest.setTimeout(60_000);

describe('kernel lifecycle (external Jupyter server)', () => {
  let jupyter: ExternalJupyter;
  let stack: Stack;

  beforeAll(async () => {
    jupyter = await ExternalJupyter.start();
    stack = await Stack.start({ workerEnv: { ...jupyter.workerEnv, KERNEL_POOL_SIZE: '0' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await jupyter?.stop();
  });

  /** The kernel working directory of a session (relative cwd under the server's root). */
  const sessionDir = (sessionId: string) => join(jupyter.rootDir, TEST_TENANT, sessionId);
  const withId = (code: string) => `${PRINT_KERNEL_ID}\n${code}`;
  const added = (before: string[], now: string[]) => now.filter((id) => !before.includes(id));

  it('starts one kernel for a session and reuses it for every execution (12)', async () => {
    const before = await jupyter.kernelIds();
    const runs: Execution[] = [];
    for (let i = 1; i <= 3; i++) {
      const execution = await stack.run('kl-reuse', { code: withId(`n = globals().get('n', 0) + 1\nprint('n', n)`) });
      expect(execution.status).toBe('completed');
      expect(execution.result?.output).toContain(`n ${i}\n`);
      runs.push(execution);
      expect(added(before, await jupyter.kernelIds())).toEqual([kernelIdIn(execution.result?.output)]);
    }
    expect(new Set(runs.map((r) => kernelIdIn(r.result?.output))).size).toBe(1);
    expect(runs.map((r) => r.kernel?.generation)).toEqual([1, 1, 1]);
    expect(runs.map((r) => r.kernel?.restarted)).toEqual([true, false, false]);
    expect(runs.map((r) => r.kernel?.stateLost)).toEqual([false, false, false]);
  });

  it('gives each per-call execution a fresh kernel, shuts it down, and leaves the session kernel alone (12)', async () => {
    const session = await stack.run('kl-percall', { code: withId("s = 'session state'") });
    const sessionKernel = kernelIdIn(session.result?.output);
    const before = await jupyter.kernelIds();
    expect(before).toContain(sessionKernel);

    const perCall: string[] = [];
    for (let i = 0; i < 2; i++) {
      const execution = await stack.run('kl-percall', { code: withId("print('s' in globals())"), kernelMode: 'per-call' });
      expect(execution.status).toBe('completed');
      expect(execution.result?.output).toContain('False\n');
      expect(execution.kernel?.restarted).toBe(true);
      perCall.push(kernelIdIn(execution.result?.output));
    }
    expect(new Set([sessionKernel, ...perCall]).size).toBe(3);

    const after = await jupyter.kernelsUntil((ids) => perCall.every((id) => !ids.includes(id)));
    expect(after).toEqual(before);

    const again = await stack.run('kl-percall', { code: withId('print(s)') });
    expect(again.result?.output).toContain('session state\n');
    expect(kernelIdIn(again.result?.output)).toBe(sessionKernel);
    expect(again.kernel).toMatchObject({ generation: 1, restarted: false, stateLost: false });
  });

  it('shuts down the kernel of a per-call execution that timed out (11)', async () => {
    const before = await jupyter.kernelIds();
    const execution = await stack.run('kl-percall-timeout', {
      code: withId("import sys, time\nsys.stdout.flush()\ntime.sleep(60)"),
      kernelMode: 'per-call',
      timeoutMs: 4_000,
    });
    expect(execution.status).toBe('timed_out');
    expect(execution.result?.output.split('\n')[0]).toBe(
      '[eval cell timed out after 4s; kernel interrupted but remains running. Reset the kernel via { reset: true } if state appears corrupted.]',
    );
    const kernelId = kernelIdIn(execution.result?.output);
    expect(await jupyter.kernelsUntil((ids) => !ids.includes(kernelId))).toEqual(before);
  });

  it('reset shuts the old kernel down and runs the code on a new one (13)', async () => {
    const first = await stack.run('kl-reset', { code: withId('x = 1') });
    const oldKernel = kernelIdIn(first.result?.output);

    const reset = await stack.run('kl-reset', { reset: true, code: withId('print("x" in globals())') });
    expect(reset.status).toBe('completed');
    expect(reset.result?.output).toContain('False\n');
    expect(reset.kernel).toMatchObject({ generation: 2, restarted: true, stateLost: false });
    const newKernel = kernelIdIn(reset.result?.output);
    expect(newKernel).not.toBe(oldKernel);

    const ids = await jupyter.kernelIds();
    expect(ids).not.toContain(oldKernel);
    expect(ids).toContain(newKernel);
  });

  it('replaces a kernel found dead at the start of an execution, then reuses the replacement (14)', async () => {
    const doomed = await stack.run('kl-dead', {
      code: withId('import os, threading\nlost = 1\nthreading.Timer(0.3, lambda: os._exit(1)).start()'),
    });
    expect(doomed.status).toBe('completed');
    const deadKernel = kernelIdIn(doomed.result?.output);
    // The server forgets a dead kernel (no auto-restart); give the worker a moment to hear of it too.
    expect(await jupyter.kernelsUntil((ids) => !ids.includes(deadKernel))).not.toContain(deadKernel);
    await new Promise((r) => setTimeout(r, 1_000));

    const replaced = await stack.run('kl-dead', { code: withId("print('lost' in globals())") });
    expect(replaced.status).toBe('completed');
    expect(replaced.result?.output).toContain('False\n');
    expect(replaced.kernel).toMatchObject({ generation: 2, stateLost: true, restarted: true });
    const replacement = kernelIdIn(replaced.result?.output);
    expect(replacement).not.toBe(deadKernel);

    const reused = await stack.run('kl-dead', { code: withId("print('reused')") });
    expect(reused.result?.output).toContain('reused\n');
    expect(kernelIdIn(reused.result?.output)).toBe(replacement);
    expect(reused.kernel).toMatchObject({ generation: 2, stateLost: false, restarted: false });
  });

  it('with retryOnKernelLoss, runs code whose kernel died once more on a new kernel (15)', async () => {
    const code = [
      'import os',
      "with open('runs.txt', 'a+') as f:",
      '    f.seek(0)',
      '    before = len(f.read().splitlines())',
      "    f.write('run\\n')",
      'if before == 0:',
      '    os._exit(1)',
      'print(before + 1)',
    ].join('\n');
    const execution = await stack.run('kl-retry', { code, retryOnKernelLoss: true });
    expect(execution.status).toBe('completed');
    expect(execution.result?.output).toBe('2\n');
    expect(execution.kernel).toMatchObject({ generation: 2, stateLost: true, restarted: true });
    // Once on each kernel: exactly two runs, never a third.
    expect(readFileSync(join(sessionDir('kl-retry'), 'runs.txt'), 'utf8')).toBe('run\nrun\n');
  });

  it('without retryOnKernelLoss, a kernel death mid-run is outcome_unknown and the next run says state was lost (15)', async () => {
    const warm = await stack.run('kl-crash', { code: 'y = 1' });
    expect(warm.kernel?.generation).toBe(1);

    // Output printed before the crash is kept (given time to leave the kernel: os._exit does not
    // wait for ipykernel's IOPub thread).
    const crashed = await stack.run('kl-crash', {
      code: "print('about to crash', flush=True)\nimport os, time\ntime.sleep(0.5)\nos._exit(1)",
    });
    expect(crashed.status).toBe('outcome_unknown');
    expect(crashed.result?.exitCode).toBeNull();
    expect(crashed.result?.output).toContain('about to crash\n');
    expect(crashed.result?.output.split('\n')[0]).toMatch(/^\[.*kernel died.*\]$/);

    const next = await stack.run('kl-crash', { code: "print('y' in globals())" });
    expect(next.status).toBe('completed');
    expect(next.result?.output).toBe('False\n');
    expect(next.kernel).toMatchObject({ generation: 2, stateLost: true, restarted: true });
  });

  it('ends a per-call execution whose kernel start outlasts its deadline as timed_out in kernel_start (8)', async () => {
    const before = await jupyter.kernelIds();
    const execution = await stack.run('kl-slow-start', {
      code: "open('ran.txt', 'w').write('ran')",
      kernelMode: 'per-call',
      timeoutMs: 150,
    });
    expect(execution.status).toBe('timed_out');
    expect(execution.phase).toBe('kernel_start');
    expect(execution.result?.output).toBe('Command timed out');
    expect(execution.result?.cancelled).toBe(true);
    expect(execution.result?.exitCode).toBeNull();
    // The half-started kernel is shut down once it comes up (give it time to come up first);
    // the code never reached it.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await jupyter.kernelsUntil((ids) => added(before, ids).length === 0)).toEqual(before);
    expect(existsSync(join(sessionDir('kl-slow-start'), 'ran.txt'))).toBe(false);
  });

  it('cancels a per-call execution during its kernel start: empty output, the code never runs (10)', async () => {
    const before = await jupyter.kernelIds();
    const { executionId } = await stack.submit('kl-cancel-start', {
      code: "open('ran.txt', 'w').write('ran')",
      kernelMode: 'per-call',
    });
    await stack.waitForStatus(executionId, 'running');
    const cancel = await stack.request('POST', `/v1/executions/${executionId}/cancel`);
    expect(cancel.status).toBe(202);

    const execution = await stack.settled(executionId);
    expect(execution.status).toBe('cancelled');
    expect(execution.phase).toBe('kernel_start');
    expect(execution.result?.output).toBe('');
    expect(execution.result?.cancelled).toBe(true);
    expect(execution.result?.exitCode).toBeNull();
    expect(await jupyter.kernelsUntil((ids) => added(before, ids).length === 0)).toEqual(before);
    expect(existsSync(join(sessionDir('kl-cancel-start'), 'ran.txt'))).toBe(false);
  });
});
