import type { Kernel, KernelMessage } from '@jupyterlab/services';
import type { DisplayOutput } from '@kernelfleet/contracts';
import { JupyterRestClient } from './jupyter-rest-client';
import { KernelClosedError, KernelDiedError } from './kernel-errors';
import { JupyterKernelHandle, outcomeFromReply } from './kernel-handle';

type Slot<T> = (sender: unknown, value: T) => void;

/** Just enough of a lumino Signal. */
class FakeSignal<T> {
  private slots: { slot: Slot<T>; thisArg: unknown }[] = [];
  connect(slot: Slot<T>, thisArg?: unknown): boolean {
    this.slots.push({ slot, thisArg });
    return true;
  }
  disconnect(slot: Slot<T>, thisArg?: unknown): boolean {
    this.slots = this.slots.filter((s) => s.slot !== slot || s.thisArg !== thisArg);
    return true;
  }
  emit(value: T): void {
    for (const { slot, thisArg } of [...this.slots]) slot.call(thisArg, this, value);
  }
}

class FakeFuture {
  onIOPub: (msg: KernelMessage.IIOPubMessage) => void = () => undefined;
  resolve!: (reply: { content: KernelMessage.IExecuteReplyMsg['content'] }) => void;
  reject!: (error: Error) => void;
  readonly done = new Promise<{ content: KernelMessage.IExecuteReplyMsg['content'] }>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
  iopub(msgType: string, content: unknown): void {
    this.onIOPub({ header: { msg_type: msgType }, content } as unknown as KernelMessage.IIOPubMessage);
  }
}

class FakeConnection {
  readonly statusChanged = new FakeSignal<KernelMessage.Status>();
  readonly connectionStatusChanged = new FakeSignal<Kernel.ConnectionStatus>();
  readonly futures: FakeFuture[] = [];
  readonly requests: unknown[] = [];
  isDisposed = false;
  requestExecute(content: unknown): FakeFuture {
    this.requests.push(content);
    const future = new FakeFuture();
    this.futures.push(future);
    return future;
  }
  dispose(): void {
    this.isDisposed = true;
    // like KernelConnection: pending futures are cancelled
    for (const f of this.futures) f.reject(new Error('Canceled future'));
  }
}

function setup(rest: Partial<JupyterRestClient> = {}) {
  const connection = new FakeConnection();
  const handle = new JupyterKernelHandle('k1', connection as unknown as Kernel.IKernelConnection, rest as JupyterRestClient);
  const streams: [string, string][] = [];
  const displays: DisplayOutput[] = [];
  const handlers = { onStream: (n: string, t: string) => streams.push([n, t]), onDisplay: (d: DisplayOutput) => displays.push(d) };
  return { connection, handle, streams, displays, handlers };
}

describe('outcomeFromReply', () => {
  it('maps ok, aborted, stdin and errors', () => {
    expect(outcomeFromReply({ status: 'ok', execution_count: 1, user_expressions: {} })).toEqual({ status: 'ok' });
    expect(outcomeFromReply({ status: 'aborted', execution_count: null } as never)).toEqual({ status: 'aborted' });
    const base = { status: 'error' as const, execution_count: 1, traceback: ['tb'] };
    expect(outcomeFromReply({ ...base, ename: 'StdinNotImplementedError', evalue: 'raw_input was called' })).toEqual({ status: 'stdin' });
    expect(outcomeFromReply({ ...base, ename: 'ValueError', evalue: 'boom' })).toEqual({
      status: 'error',
      ename: 'ValueError',
      evalue: 'boom',
      traceback: ['tb'],
    });
  });
});

describe('JupyterKernelHandle', () => {
  it('executes without stdin and routes streams and displays', async () => {
    const { connection, handle, streams, displays, handlers } = setup();
    const result = handle.execute('x', handlers);
    expect(connection.requests[0]).toMatchObject({ code: 'x', allow_stdin: false });
    const future = connection.futures[0];
    future.iopub('stream', { name: 'stdout', text: 'hi\n' });
    future.iopub('execute_result', { data: { 'text/plain': '42' } });
    future.iopub('error', { ename: 'E', evalue: '', traceback: [] });
    future.resolve({ content: { status: 'ok', execution_count: 1, user_expressions: {} } });
    await expect(result).resolves.toEqual({ status: 'ok' });
    expect(streams).toEqual([['stdout', 'hi\n']]);
    expect(displays).toEqual([{ type: 'text', text: '42\n', markdown: false }]);
  });

  it('rejects an execution in flight with KernelDiedError when the kernel dies', async () => {
    const { connection, handle, handlers } = setup();
    const result = handle.execute('os._exit(1)', handlers);
    connection.statusChanged.emit('dead');
    await expect(result).rejects.toBeInstanceOf(KernelDiedError);
    await expect(handle.dead).resolves.toBeInstanceOf(KernelDiedError);
    expect(connection.isDisposed).toBe(true);
    await expect(handle.execute('1', handlers)).rejects.toBeInstanceOf(KernelDiedError);
    expect(await handle.isAlive()).toBe(false);
  });

  it('treats a restart as death', async () => {
    const { connection, handle } = setup();
    connection.statusChanged.emit('autorestarting');
    await expect(handle.dead).resolves.toMatchObject({ reason: expect.stringContaining('restarted') });
  });

  it('marks the kernel dead when the websocket drops and the kernel is gone', async () => {
    const { connection, handle, handlers } = setup({ getKernel: async () => undefined });
    const result = handle.execute('1', handlers);
    connection.connectionStatusChanged.emit('connecting');
    await expect(result).rejects.toBeInstanceOf(KernelDiedError);
  });

  it('survives a websocket drop that reconnects while the kernel is alive', async () => {
    jest.useFakeTimers();
    try {
      const { connection, handle } = setup({ getKernel: async () => ({ id: 'k1', name: 'python3', execution_state: 'busy' }) });
      connection.connectionStatusChanged.emit('connecting');
      await Promise.resolve();
      connection.connectionStatusChanged.emit('connected');
      jest.advanceTimersByTime(10_000);
      await jest.runAllTimersAsync();
      expect(connection.isDisposed).toBe(false);
      expect(await handle.isAlive()).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  it('rejects in-flight work with KernelClosedError on dispose and shuts down once', async () => {
    const shutdownKernel = jest.fn(async () => undefined);
    const { handle, handlers, connection } = setup({ shutdownKernel });
    const result = handle.execute('1', handlers);
    handle.dispose();
    await expect(result).rejects.toBeInstanceOf(KernelClosedError);
    expect(connection.isDisposed).toBe(true);
    await Promise.all([handle.shutdown(), handle.shutdown()]);
    expect(shutdownKernel).toHaveBeenCalledTimes(1);
    let died = false;
    void handle.dead.then(() => (died = true));
    connection.statusChanged.emit('dead');
    await Promise.resolve();
    expect(died).toBe(false);
  });

  it('does not hang shutdown when the server is gone', async () => {
    const { handle } = setup({
      shutdownKernel: async () => {
        throw new TypeError('fetch failed');
      },
    });
    await expect(handle.shutdown()).resolves.toBeUndefined();
  });

  it('reports a throwing handler after the execution finished', async () => {
    const { connection, handle } = setup();
    const result = handle.execute('print(1)', {
      onStream: () => {
        throw new Error('sink full');
      },
      onDisplay: () => undefined,
    });
    connection.futures[0].iopub('stream', { name: 'stdout', text: '1\n' });
    connection.futures[0].resolve({ content: { status: 'ok', execution_count: 1, user_expressions: {} } });
    await expect(result).rejects.toThrow('sink full');
  });
});
