import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { JupyterServerStartError } from './kernel-errors';
import { JupyterRestClient } from './jupyter-rest-client';

/** Options of {@link JupyterServer.start}. */
export interface JupyterServerOptions {
  /** Python interpreter of the venv that has jupyter_server and ipykernel. */
  python: string;
  /** The server's root_dir (created if missing); kernel working directories are relative to it. */
  rootDir: string;
  /**
   * The COMPLETE environment of the server, inherited by every kernel. Build it with
   * `kernelEnvironment(process.env)`, never pass process.env itself.
   */
  env: Record<string, string>;
  /** How long to wait for `/api/status` to answer (default 30 s). */
  startTimeoutMs?: number;
  /** Receives every line the server (and kernels' process-level stdout/stderr) prints. */
  log?: (line: string) => void;
  /** Path of python/kernelfleet_jupyter.py; found by walking up from this file when omitted. */
  launcherScript?: string;
  /** Set TCP_NODELAY on kernel websockets (default true; false exists only to measure the effect). */
  wsNoDelay?: boolean;
  /** Start every kernel inside python/kernelfleet_sandbox.py with these settings. */
  sandbox?: KernelSandboxSettings;
}

/**
 * What python/kernelfleet_sandbox.py applies to each kernel. Limits of 0 are not applied.
 * `switchUser` takes effect only when the server runs as root.
 */
export interface KernelSandboxSettings {
  switchUser: boolean;
  uidBase: number;
  uidCount: number;
  /** Host-wide folder of the uid locks: every worker on the machine must use the same one. */
  lockDir: string;
  /** Where each sandbox uid gets its private HOME (emptied whenever the uid is taken). */
  runDir: string;
  /**
   * Folders a kernel needs (the kernel root) that may lie below a place every user may write,
   * such as /tmp: the sandbox covers those places with the kernel's own and binds these back.
   */
  keepPaths?: string[];
  /** Private /tmp, /var/tmp, /dev/shm and /run/lock for each kernel of its own uid (default true). */
  privatePlaces?: boolean;
  limits: {
    addressSpaceBytes: number;
    cpuSeconds: number;
    processes: number;
    fileSizeBytes: number;
    openFiles: number;
  };
}

export function sandboxLaunchSettings(sandbox: KernelSandboxSettings): Record<string, unknown> {
  const { limits } = sandbox;
  return {
    switch_user: sandbox.switchUser,
    uid_base: sandbox.uidBase,
    uid_count: sandbox.uidCount,
    lock_dir: resolve(sandbox.lockDir),
    run_dir: resolve(sandbox.runDir),
    keep_paths: (sandbox.keepPaths ?? []).map((path) => resolve(path)),
    private_places: sandbox.privatePlaces ?? true,
    limits: {
      address_space_bytes: limits.addressSpaceBytes,
      cpu_seconds: limits.cpuSeconds,
      processes: limits.processes,
      file_size_bytes: limits.fileSizeBytes,
      open_files: limits.openFiles,
    },
  };
}

/** How the server process ended. */
export interface JupyterServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const LAUNCHER = join('python', 'kernelfleet_jupyter.py');
const STOP_GRACE_MS = 3_000;
const LOG_TAIL_LINES = 40;
const MAX_PORT_ATTEMPTS = 3;

/** Servers still running, terminated if the Node process exits without stopping them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGTERM');
  });
}

/** Finds python/kernelfleet_jupyter.py above this file (source tree and dist/ both work). */
export function findLauncherScript(start: string = __dirname): string {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    const candidate = join(dir, LAUNCHER);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${LAUNCHER} not found above ${start}`);
  }
}

/** Asks the OS for a free loopback port (there is a small race until the server binds it). */
export function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolvePort(port) : reject(new Error('no port assigned'))));
    });
  });
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A Jupyter server child process on 127.0.0.1 with a random token, started through
 * python/kernelfleet_jupyter.py (TCP_NODELAY on kernel websockets, IOPub rate limits off,
 * no extensions/terminals/browser, dead kernels reported instead of auto-restarted).
 */
export class JupyterServer {
  /** Resolves when the process has exited, however that happened. */
  readonly exited: Promise<JupyterServerExit>;
  private stopping?: Promise<void>;

  private constructor(
    /** Base URL without trailing slash, e.g. `http://127.0.0.1:41234`. */
    readonly url: string,
    /** Token for `Authorization: token …`; random per server. */
    readonly token: string,
    private readonly child: ChildProcess,
    exited: Promise<JupyterServerExit>,
  ) {
    this.exited = exited;
  }

  /** Process id of the server. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Spawns the server and resolves once `GET /api/status` answers.
   *
   * @throws JupyterServerStartError if the process exits early or does not answer in time.
   */
  static async start(opts: JupyterServerOptions): Promise<JupyterServer> {
    const launcher = opts.launcherScript ?? findLauncherScript();
    mkdirSync(opts.rootDir, { recursive: true });
    for (let attempt = 1; ; attempt++) {
      try {
        return await JupyterServer.launch(opts, launcher, await findFreePort());
      } catch (error) {
        const portTaken = error instanceof JupyterServerStartError && error.logTail.some((l) => /address already in use|port \d+ is not available/i.test(l));
        if (!portTaken || attempt >= MAX_PORT_ATTEMPTS) throw error;
      }
    }
  }

  private static async launch(opts: JupyterServerOptions, launcher: string, port: number): Promise<JupyterServer> {
    const token = randomBytes(32).toString('hex');
    // A process group of its own: a signal to the worker's whole group (systemd's default stop,
    // `tini -g`, Ctrl-C in a terminal) reaches the worker, which drains and then stops the server
    // itself; the server taking it too would shut the kernels down under the running executions.
    // It still goes when the worker dies: the launcher exits when its stdin (our pipe) closes.
    const child = spawn(opts.python, [launcher], { cwd: opts.rootDir, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const tail: string[] = [];
    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
      opts.log?.(line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
    }
    let hasExited = false;
    const exited = new Promise<JupyterServerExit>((resolveExit) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (hasExited) return;
        hasExited = true;
        running.delete(child);
        // Orphaned kernels may still hold our stdout/stderr pipes: let the last lines arrive, then let go.
        setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, 500).unref();
        resolveExit({ code, signal });
      };
      child.once('exit', finish);
      child.once('error', (error) => {
        onLine(`spawn failed: ${error.message}`);
        finish(null, null);
      });
    });
    running.add(child);
    installExitHook();
    // Settings travel over stdin; the pipe stays open: its EOF tells the launcher to stop.
    child.stdin?.on('error', () => undefined);
    const settings = {
      port,
      token,
      root_dir: resolve(opts.rootDir),
      ws_nodelay: opts.wsNoDelay ?? true,
      sandbox: opts.sandbox ? sandboxLaunchSettings(opts.sandbox) : undefined,
    };
    child.stdin?.write(`${JSON.stringify(settings)}\n`);

    const server = new JupyterServer(`http://127.0.0.1:${port}`, token, child, exited);
    const rest = new JupyterRestClient({ baseUrl: server.url, token });
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
    while (!hasExited) {
      try {
        await rest.status(1_000);
        return server;
      } catch {
        if (Date.now() > deadline) {
          await server.stop();
          throw new JupyterServerStartError(`Jupyter server did not answer /api/status within ${opts.startTimeoutMs ?? 30_000} ms`, tail);
        }
        await Promise.race([delay(100), exited]);
      }
    }
    const { code, signal } = await exited;
    throw new JupyterServerStartError(`Jupyter server exited during start (code ${code}, signal ${signal})`, tail);
  }

  /** SIGTERM (the server shuts its kernels down), SIGKILL after 3 s; resolves once it has exited. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      let killTimer: NodeJS.Timeout | undefined;
      const alreadyExited = this.child.exitCode !== null || this.child.signalCode !== null;
      if (!alreadyExited) {
        this.child.kill('SIGTERM');
        killTimer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      }
      try {
        await this.exited;
      } finally {
        clearTimeout(killTimer);
        this.child.stdin?.destroy();
      }
    })();
    return this.stopping;
  }
}
