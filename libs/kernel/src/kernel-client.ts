import { Kernel, KernelConnection, KernelMessage, ServerConnection } from '@jupyterlab/services';
import WebSocket from 'ws';
import { JupyterEndpoint, JupyterRestClient, KernelModel, kernelPathSegments } from './jupyter-rest-client';
import { KernelDiedError, KernelStartTimeoutError } from './kernel-errors';
import { JupyterKernelHandle, KernelHandle } from './kernel-handle';

/** Options of {@link KernelClient.startKernel}. */
export interface StartKernelOptions {
  /** Working directory relative to the server's root_dir; created (with parents) if missing. */
  cwd?: string;
  /** Budget for REST start + websocket + kernel_info; the kernel is shut down when exceeded. */
  timeoutMs: number;
  /** Kernel spec name (default `python3`). */
  kernelName?: string;
}

const SHUTDOWN_AFTER_FAILED_START_MS = 5_000;
/** A websocket that never answers the close handshake is destroyed after this long. */
const WS_CLOSE_GRACE_MS = 1_000;

/**
 * A `ws` WebSocket that authenticates with a header (the token stays out of URLs and logs),
 * never negotiates compression, and cannot linger for ws's 30 s close timeout.
 */
function authenticatedWebSocket(token: string) {
  return class AuthenticatedWebSocket extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { headers: { Authorization: `token ${token}` }, perMessageDeflate: false });
    }

    override close(code?: number, data?: string | Buffer): void {
      super.close(code, data);
      setTimeout(() => this.terminate(), WS_CLOSE_GRACE_MS).unref();
    }
  };
}

/** Resolves on the first kernel_info_reply; rejects if the kernel is reported dead first. */
function whenReady(connection: Kernel.IKernelConnection, kernelId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onStatus = (_: Kernel.IKernelConnection, status: KernelMessage.Status) => {
      if (status !== 'dead') return;
      connection.statusChanged.disconnect(onStatus);
      reject(new KernelDiedError(kernelId, 'kernel died while starting'));
    };
    connection.statusChanged.connect(onStatus);
    connection.info.then(() => {
      connection.statusChanged.disconnect(onStatus);
      resolve();
    }, reject);
  });
}

/** Starts Jupyter kernels on one server and connects to them over the kernel websocket. */
export class KernelClient {
  private readonly rest: JupyterRestClient;
  private readonly settings: ServerConnection.ISettings;

  constructor(endpoint: JupyterEndpoint) {
    this.rest = new JupyterRestClient(endpoint);
    const base = endpoint.baseUrl.replace(/\/+$/, '');
    this.settings = ServerConnection.makeSettings({
      baseUrl: `${base}/`,
      wsUrl: `ws${base.slice(4)}/`,
      token: endpoint.token,
      appendToken: false,
      fetch: (input, init) => fetch(input, init),
      Request,
      Headers,
      WebSocket: authenticatedWebSocket(endpoint.token) as unknown as typeof globalThis.WebSocket,
    });
  }

  /**
   * Launches a kernel and resolves once it answered kernel_info over its websocket.
   *
   * @throws KernelStartTimeoutError after `timeoutMs` (the half-started kernel is shut down).
   * @throws KernelDiedError if the kernel process dies while starting.
   * @throws TypeError for an invalid `cwd`.
   */
  async startKernel(opts: StartKernelOptions): Promise<KernelHandle> {
    const cwd = opts.cwd === undefined ? undefined : kernelPathSegments(opts.cwd).join('/');
    let timedOut = false;
    let connection: Kernel.IKernelConnection | undefined;
    let model: KernelModel | undefined;
    const abort = new AbortController();
    const cleanUp = () => {
      connection?.dispose();
      if (model) void this.rest.shutdownKernel(model.id, SHUTDOWN_AFTER_FAILED_START_MS).catch(() => undefined);
    };

    const work = (async () => {
      if (cwd) await this.rest.ensureDirectory(cwd, abort.signal);
      // Not aborted on timeout: the server would start the kernel anyway; we shut it down instead.
      model = await this.rest.startKernel(opts.kernelName ?? 'python3', cwd ?? '');
      if (timedOut) return cleanUp();
      connection = new KernelConnection({ model, serverSettings: this.settings, handleComms: false, username: 'kernelfleet' });
      await whenReady(connection, model.id);
      if (timedOut) return cleanUp();
      return new JupyterKernelHandle(model.id, connection, this.rest);
    })();

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        abort.abort();
        cleanUp();
        reject(new KernelStartTimeoutError(opts.timeoutMs));
      }, opts.timeoutMs);
    });
    try {
      const handle = await Promise.race([work, timeout]);
      if (!handle) throw new KernelStartTimeoutError(opts.timeoutMs);
      return handle;
    } catch (error) {
      if (!timedOut) cleanUp();
      throw error;
    } finally {
      clearTimeout(timer);
      work.catch(() => undefined);
    }
  }
}
