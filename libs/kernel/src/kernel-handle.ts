import type { Kernel, KernelMessage } from '@jupyterlab/services';
import { DisplayOutput } from '@kernelfleet/contracts';
import { toDisplayOutputs } from './display-mapping';
import { KernelClosedError, KernelDiedError } from './kernel-errors';
import { isConnectionFailure, JupyterRestClient } from './jupyter-rest-client';

/** Receives the outputs of one execution as they arrive. */
export interface ExecuteHandlers {
  onStream(name: 'stdout' | 'stderr', text: string): void;
  /** Rich outputs, text outputs of display_data / execute_result included. */
  onDisplay(out: DisplayOutput): void;
}

/** How an execution ended. Tracebacks are text with ANSI escapes; the caller sanitises. */
export type ExecuteOutcome =
  | { status: 'ok' }
  | { status: 'error'; ename: string; evalue: string; traceback: string[] }
  /** The code called input()/getpass(); the kernel is still usable. */
  | { status: 'stdin' }
  /** Not run because an earlier queued request failed. */
  | { status: 'aborted' };

/** A started, ready kernel. */
export interface KernelHandle {
  readonly id: string;
  /**
   * Runs `code`, resolving after the execute_reply AND the kernel's idle status for this request,
   * so every output has been delivered to `handlers` first.
   *
   * @throws KernelDiedError if the kernel dies (or its server goes away) before that.
   * @throws KernelClosedError if the handle is disposed or shut down meanwhile.
   *
   * `metadata` travels in the execute_request's metadata: code in the cell reads it through
   * `get_ipython().kernel.get_parent()["metadata"]` (the tool bridge's address and token).
   */
  execute(code: string, handlers: ExecuteHandlers, metadata?: Record<string, unknown>): Promise<ExecuteOutcome>;
  /** Sends an interrupt (SIGINT) through the REST API; the running cell ends with KeyboardInterrupt. */
  interrupt(): Promise<void>;
  /** Deletes the kernel through the REST API, bounded in time; idempotent. */
  shutdown(): Promise<void>;
  /** False when the server no longer knows the kernel, reports it dead, or is unreachable. */
  isAlive(): Promise<boolean>;
  /** Resolves (never rejects) if the kernel dies unexpectedly; stays pending after shutdown/dispose. */
  readonly dead: Promise<KernelDiedError>;
  /** Closes the websocket; the kernel keeps running on the server. */
  dispose(): void;
}

/** ipykernel raises this from input() when the request had allow_stdin=false. */
const STDIN_ERROR = 'StdinNotImplementedError';
const SHUTDOWN_TIMEOUT_MS = 5_000;
/** How long a lost websocket may take to come back before the kernel counts as dead. */
const RECONNECT_GRACE_MS = 5_000;

interface InFlight {
  reject(error: Error): void;
}

/** Maps an execute_reply's content to an {@link ExecuteOutcome}. */
export function outcomeFromReply(content: KernelMessage.IExecuteReplyMsg['content']): ExecuteOutcome {
  if (content.status === 'ok') return { status: 'ok' };
  if (content.status !== 'error') return { status: 'aborted' };
  if (content.ename === STDIN_ERROR) return { status: 'stdin' };
  return { status: 'error', ename: content.ename, evalue: content.evalue, traceback: [...content.traceback] };
}

/** {@link KernelHandle} over a `@jupyterlab/services` KernelConnection plus the REST API. */
export class JupyterKernelHandle implements KernelHandle {
  readonly dead: Promise<KernelDiedError>;
  private resolveDead!: (error: KernelDiedError) => void;
  private death?: KernelDiedError;
  private closed = false;
  private shuttingDown?: Promise<void>;
  private reconnectTimer?: NodeJS.Timeout;
  private readonly inFlight = new Set<InFlight>();

  constructor(
    readonly id: string,
    private readonly connection: Kernel.IKernelConnection,
    private readonly rest: JupyterRestClient,
  ) {
    this.dead = new Promise((resolve) => (this.resolveDead = resolve));
    connection.statusChanged.connect(this.onStatus, this);
    connection.connectionStatusChanged.connect(this.onConnectionStatus, this);
  }

  execute(code: string, handlers: ExecuteHandlers, metadata?: Record<string, unknown>): Promise<ExecuteOutcome> {
    if (this.death) return Promise.reject(this.death);
    if (this.closed) return Promise.reject(new KernelClosedError(this.id));
    return new Promise<ExecuteOutcome>((resolve, reject) => {
      let handlerError: unknown;
      const entry: InFlight = { reject };
      this.inFlight.add(entry);
      const content = { code, allow_stdin: false, stop_on_error: true, store_history: true, silent: false };
      const future = this.connection.requestExecute(content, true, metadata as Parameters<Kernel.IKernelConnection['requestExecute']>[2]);
      future.onIOPub = (msg) => {
        try {
          this.routeIOPub(msg, handlers);
        } catch (error) {
          handlerError ??= error;
        }
      };
      future.done.then(
        (reply) => (handlerError !== undefined ? reject(handlerError) : resolve(outcomeFromReply(reply.content))),
        (error: unknown) => reject(this.death ?? (this.closed ? new KernelClosedError(this.id) : error)),
      );
      void future.done.catch(() => undefined).finally(() => this.inFlight.delete(entry));
    });
  }

  async interrupt(): Promise<void> {
    if (this.death) throw this.death;
    await this.rest.interruptKernel(this.id);
  }

  shutdown(): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.close(new KernelClosedError(this.id));
      try {
        await this.rest.shutdownKernel(this.id, SHUTDOWN_TIMEOUT_MS);
      } catch (error) {
        // Timed out or server gone: the server (or its own shutdown) kills the kernel.
        if (!isConnectionFailure(error) && !(error instanceof DOMException)) throw error;
      }
    })();
    return this.shuttingDown;
  }

  async isAlive(): Promise<boolean> {
    if (this.death) return false;
    try {
      const model = await this.rest.getKernel(this.id, SHUTDOWN_TIMEOUT_MS);
      return model !== undefined && model.execution_state !== 'dead';
    } catch (error) {
      if (isConnectionFailure(error)) return false;
      throw error;
    }
  }

  dispose(): void {
    this.close(new KernelClosedError(this.id));
  }

  private routeIOPub(msg: KernelMessage.IIOPubMessage, handlers: ExecuteHandlers): void {
    switch (msg.header.msg_type) {
      case 'stream': {
        const { name, text } = (msg as KernelMessage.IStreamMsg).content;
        handlers.onStream(name, text);
        return;
      }
      case 'display_data':
      case 'execute_result': {
        const { data } = (msg as KernelMessage.IDisplayDataMsg | KernelMessage.IExecuteResultMsg).content;
        for (const out of toDisplayOutputs(data as Record<string, unknown>).outputs) handlers.onDisplay(out);
        return;
      }
      default:
        // error: delivered through the reply; status/execute_input/clear_output/update_display_data: ignored.
        return;
    }
  }

  private onStatus(_sender: Kernel.IKernelConnection, status: KernelMessage.Status): void {
    if (status === 'dead') this.markDead('kernel process died');
    else if (status === 'restarting' || status === 'autorestarting') this.markDead('kernel was restarted, its state is lost');
  }

  private onConnectionStatus(_sender: Kernel.IKernelConnection, status: Kernel.ConnectionStatus): void {
    if (this.closed) return;
    if (status === 'connected') {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    } else if (status === 'disconnected') {
      this.markDead('websocket to the kernel closed');
    } else if (!this.reconnectTimer) {
      // 'connecting' again after a drop: the kernel or the whole server may be gone.
      this.reconnectTimer = setTimeout(() => this.markDead('websocket to the kernel did not come back'), RECONNECT_GRACE_MS);
      void this.isAliveAfterDrop();
    }
  }

  private async isAliveAfterDrop(): Promise<void> {
    const alive = await this.isAlive().catch(() => false);
    if (!alive) this.markDead('kernel unreachable after its websocket dropped');
  }

  private markDead(reason: string): void {
    if (this.closed) return;
    this.death = new KernelDiedError(this.id, reason);
    this.resolveDead(this.death);
    this.close(this.death);
  }

  private close(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    for (const entry of this.inFlight) entry.reject(error);
    this.inFlight.clear();
    this.connection.statusChanged.disconnect(this.onStatus, this);
    this.connection.connectionStatusChanged.disconnect(this.onConnectionStatus, this);
    if (!this.connection.isDisposed) this.connection.dispose();
  }
}
