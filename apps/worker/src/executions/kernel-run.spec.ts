import type { ExecuteOutcome } from '@kernelfleet/kernel';
import { FakeKernel } from '../kernels/fake-kernel.spec-helper';
import { Deadline } from './deadline';
import type { ExecutionOutput } from './execution-output';
import { runOnKernel } from './kernel-run';

/** A kernel whose cell never ends by itself (`while True: pass`), recording interrupts. */
class HungKernel extends FakeKernel {
  interrupts = 0;
  override execute(code: string): Promise<ExecuteOutcome> {
    this.executed.push(code);
    return new Promise(() => undefined);
  }
  override async interrupt(): Promise<void> {
    this.interrupts += 1;
  }
}

const output = { stream: () => undefined, display: () => undefined } as unknown as ExecutionOutput;
const farDeadline = () => new Deadline(Date.now() + 60_000, 60_000);

describe('runOnKernel', () => {
  it('ends a hung run at once when the session is disposed: no interrupt, no grace', async () => {
    const kernel = new HungKernel();
    const cancel = new AbortController();
    const disposed = new AbortController();
    const run = runOnKernel(kernel, 'while True: pass', output, farDeadline(), { cancel: cancel.signal, disposed: disposed.signal }, 60_000);
    await new Promise((r) => setTimeout(r, 10));
    const began = Date.now();
    disposed.abort();
    expect(await run).toEqual({ kind: 'disposed' });
    expect(Date.now() - began).toBeLessThan(100);
    expect(kernel.interrupts).toBe(0);
  });

  it('a disposal wins over a cancel already in its interrupt grace', async () => {
    const kernel = new HungKernel();
    const cancel = new AbortController();
    const disposed = new AbortController();
    const run = runOnKernel(kernel, 'import time; time.sleep(10**6)', output, farDeadline(), { cancel: cancel.signal, disposed: disposed.signal }, 60_000);
    cancel.abort();
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.interrupts).toBe(1);
    disposed.abort();
    expect(await run).toEqual({ kind: 'disposed' });
  });

  it('does not send code to a kernel already disposed', async () => {
    const kernel = new HungKernel();
    const disposed = new AbortController();
    disposed.abort();
    expect(await runOnKernel(kernel, 'print(1)', output, farDeadline(), { cancel: new AbortController().signal, disposed: disposed.signal }, 1_000)).toEqual({
      kind: 'disposed',
    });
    expect(kernel.executed).toEqual([]);
  });

  it('still interrupts on cancel and reports killed after the grace when the cell does not stop', async () => {
    const kernel = new HungKernel();
    const cancel = new AbortController();
    const run = runOnKernel(kernel, 'while True: pass', output, farDeadline(), { cancel: cancel.signal }, 30);
    cancel.abort();
    expect(await run).toEqual({ kind: 'killed', by: 'cancel' });
    expect(kernel.interrupts).toBe(1);
  });

  it('a finished cell is not changed by a later disposal', async () => {
    const kernel = new FakeKernel();
    const disposed = new AbortController();
    const end = await runOnKernel(kernel, 'x = 1', output, farDeadline(), { cancel: new AbortController().signal, disposed: disposed.signal }, 1_000);
    disposed.abort();
    expect(end).toEqual({ kind: 'finished', outcome: { status: 'ok' }, interruptedBy: undefined });
  });
});
