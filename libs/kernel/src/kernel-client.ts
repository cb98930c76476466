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

/** How often a starting kernel is looked up through the REST API (it may die before its websocket says so). */
const START_WATCH_INTERVAL_MS = 500;
/**
 * Kernels one `startKernel` call may launch. A kernel can die while starting through no fault of
 * its own: jupyter_client picks its ports free and the kernel binds them a moment later, so two
 * Jupyter servers on one host sometimes hand out the same port (seen: ZMQError "Address already
 * in use", then the server drops the kernel). Another kernel gets other ports.
 */
const MAX_START_ATTEMPTS = 3;

/**
 * Resolves on the first kernel_info_reply. Rejects with KernelDiedError as soon as the kernel is
 * reported dead or restarting, its websocket gives up, or the server no longer lists it.
 */
function whenReady(connection: Kernel.IKernelConnection, kernelId: string, rest: JupyterRestClient): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      connection.statusChanged.disconnect(onStatus);
      connection.connectionStatusChanged.disconnect(onConnection);
      if (error === undefined) resolve();
      else reject(error);
    };
    const died = (reason: string) => finish(new KernelDiedError(kernelId, reason));
    const onStatus = (_: Kernel.IKernelConnection, status: KernelMessage.Status) => {
      if (status === 'dead') died('kernel died while starting');
      else if (status === 'restarting' || status === 'autorestarting') died('kernel was restarted while starting');
    };
    const onConnection = (_: Kernel.IKernelConnection, status: Kernel.ConnectionStatus) => {
      if (status === 'disconnected') died('websocket closed while starting');
    };
    const watch = setInterval(() => {
      if (connection.isDisposed) return died('the start was given up'); // timed out: stop watching
      rest.getKernel(kernelId, START_WATCH_INTERVAL_MS * 4).then(
        (model) => {
          if (!model) died('the server dropped the kernel while it started');
          else if (model.execution_state === 'dead') died('kernel died while starting');
        },
        () => undefined, // a slow or busy server is not a dead kernel; the start's budget bounds the wait
      );
    }, START_WATCH_INTERVAL_MS);
    connection.statusChanged.connect(onStatus);
    connection.connectionStatusChanged.connect(onConnection);
    connection.info.then(() => finish(), finish);
  });
}

/** Options of {@link KernelClient}. */
export interface KernelClientOptions {
  /** Told of each kernel that died while starting and is being replaced. */
  onStartRetry?(error: KernelDiedError, attempt: number): void;
}

/** Starts Jupyter kernels on one server and connects to them over the kernel websocket. */
export class KernelClient {
  private readonly rest: JupyterRestClient;
  private readonly settings: ServerConnection.ISettings;

  constructor(
    endpoint: JupyterEndpoint,
    private readonly options: KernelClientOptions = {},
  ) {
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
   * Launches a kernel and resolves once it answered kernel_info over its websocket. A kernel that
   * dies while starting is shut down and replaced by another (at most {@link MAX_START_ATTEMPTS}
   * launches), all within `timeoutMs`.
   *
   * @throws KernelStartTimeoutError after `timeoutMs` (the half-started kernel is shut down).
   * @throws KernelDiedError if the last kernel launched died while starting too.
   * @throws TypeError for an invalid `cwd`.
   */
  async startKernel(opts: StartKernelOptions): Promise<KernelHandle> {
    const cwd = opts.cwd === undefined ? undefined : kernelPathSegments(opts.cwd).join('/');
    const until = Date.now() + opts.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.launch(opts.kernelName ?? 'python3', cwd, until - Date.now());
      } catch (error) {
        if (error instanceof KernelStartTimeoutError) throw new KernelStartTimeoutError(opts.timeoutMs);
        if (!(error instanceof KernelDiedError) || attempt >= MAX_START_ATTEMPTS || until - Date.now() <= 0) throw error;
        this.options.onStartRetry?.(error, attempt);
      }
    }
  }

  /** One launch: REST start, websocket, kernel_info, within `timeoutMs`; cleaned up on failure. */
  private async launch(kernelName: string, cwd: string | undefined, timeoutMs: number): Promise<KernelHandle> {
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
      model = await this.rest.startKernel(kernelName, cwd ?? '');
      if (timedOut) return cleanUp();
      connection = new KernelConnection({ model, serverSettings: this.settings, handleComms: false, username: 'kernelfleet' });
      await whenReady(connection, model.id, this.rest);
      if (timedOut) return cleanUp();
      return new JupyterKernelHandle(model.id, connection, this.rest);
    })();

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        abort.abort();
        cleanUp();
        reject(new KernelStartTimeoutError(timeoutMs));
      }, Math.max(0, timeoutMs));
    });
    try {
      const handle = await Promise.race([work, timeout]);
      if (!handle) throw new KernelStartTimeoutError(timeoutMs);
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
