import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import type { WorkerConfig } from '@kernelfleet/config';
import { JupyterServer, KernelClient, type KernelClientOptions, kernelEnvironment } from '@kernelfleet/kernel';
import { lifecycleLine } from '@kernelfleet/telemetry';
import { WORKER_CONFIG } from '../tokens';
import { planSandbox, type SandboxPlan } from './kernel-sandbox';
import { raiseKernelWalls, type KernelWalls } from './kernel-walls';

/** A server that dies again this soon after a restart is not restarted: the worker exits. */
const MIN_UPTIME_FOR_RESTART_MS = 10_000;

/**
 * The worker's Jupyter server: the one named by JUPYTER_URL/JUPYTER_TOKEN, or one we spawn on
 * loopback with a random token and supervise. If ours dies, every kernel died with it: listeners
 * of `onRestart` forget them (their sessions' next executions report the lost state) and a new
 * server takes its place. A server that keeps dying makes the worker exit, and the fleet treats
 * the worker as lost.
 */
@Injectable()
export class JupyterService implements OnApplicationShutdown {
  private readonly logger = new Logger(JupyterService.name);
  private readonly restartListeners: (() => void)[] = [];
  private server?: JupyterServer;
  private kernelClient?: KernelClient;
  private stopping = false;
  private sandbox?: SandboxPlan;
  private walls?: KernelWalls;

  constructor(@Inject(WORKER_CONFIG) private readonly config: WorkerConfig) {}

  get client(): KernelClient {
    if (!this.kernelClient) throw new Error('Jupyter server not started');
    return this.kernelClient;
  }

  /** Whether each kernel runs as a uid of its own (our own server, started as root). */
  get kernelUsers(): boolean {
    return this.sandbox?.kernelUsers ?? false;
  }

  /**
   * Whether code in a kernel may open a connection to the fleet's Redis: true unless the walls
   * around our own kernels were proven at start (kernel-walls.ts), and for an external server.
   */
  get kernelsReachRedis(): boolean {
    return this.walls?.kernelsReachRedis ?? true;
  }

  /** Called after our Jupyter server died and a new one is up. */
  onRestart(listener: () => void): void {
    this.restartListeners.push(listener);
  }

  async start(): Promise<void> {
    const { url, token } = this.config.jupyter;
    if (url && token) {
      this.kernelClient = new KernelClient({ baseUrl: url, token }, this.clientOptions());
      this.logger.log(lifecycleLine(`using Jupyter server at ${url}; what its kernels can reach is up to its deployment (docs/security.md)`));
      return;
    }
    await this.spawn();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.server?.stop();
    await this.walls?.release();
  }

  private async spawn(): Promise<void> {
    const { python, rootDir } = this.config.jupyter;
    mkdirSync(rootDir, { recursive: true });
    if (!this.sandbox) {
      this.sandbox = planSandbox(this.config);
      this.logger.log(lifecycleLine(this.sandbox.summary));
      this.walls = await raiseKernelWalls(this.config, this.sandbox);
      const line = lifecycleLine(this.walls.summary);
      if (this.walls.kernelsReachRedis || this.config.sandbox.singleTenantDev) this.logger.warn(line);
      else this.logger.log(line);
    }
    const server = await JupyterServer.start({
      python,
      rootDir,
      sandbox: this.sandbox.settings,
      env: kernelEnvironment(process.env),
      log: (line) => this.logger.debug(line),
    });
    const startedAt = Date.now();
    this.server = server;
    this.kernelClient = new KernelClient({ baseUrl: server.url, token: server.token }, this.clientOptions());
    this.logger.log(lifecycleLine(`started Jupyter server pid ${server.pid} at ${server.url}`, { jupyterPid: server.pid }));
    void server.exited.then(({ code, signal }) => this.onExit(code, signal, startedAt));
  }

  private clientOptions(): KernelClientOptions {
    return { onStartRetry: (error, attempt) => this.logger.warn(`${error.message} (launch ${attempt}); starting another`) };
  }

  private async onExit(code: number | null, signal: string | null, startedAt: number): Promise<void> {
    if (this.stopping) return;
    this.logger.error(`Jupyter server exited (code ${code}, signal ${signal}); its kernels are gone`);
    if (Date.now() - startedAt < MIN_UPTIME_FOR_RESTART_MS) {
      this.logger.error('Jupyter server keeps dying; the worker exits');
      process.exit(70);
    }
    try {
      await this.spawn();
    } catch (error) {
      this.logger.error(`Jupyter server could not be restarted (${error}); the worker exits`);
      process.exit(70);
    }
    for (const listener of this.restartListeners) listener();
  }
}
