import type { WorkerConfig } from '@kernelfleet/config';
import { KernelStartTimeoutError, type KernelHandle } from '@kernelfleet/kernel';
import type { SessionRef } from '@kernelfleet/store';
import type { JupyterService } from '../jupyter/jupyter.service';
import { KernelPool } from './kernel-pool';
import type { KernelPlacement } from './kernel-placement';
import { StartSlots } from './start-slots';

/** A taken pool kernel's replacement starts this long after the take (KernelPoolOptions.refillDelayMs). */
const POOL_REFILL_DELAY_MS = 1_000;
/** The Jupyter server did not answer at all (as the kernel library tells it apart). */
const isConnectionFailure = (error: unknown) => error instanceof TypeError && /fetch failed/i.test(error.message);

interface StarterLog {
  warn(message: string): void;
  debug(message: string): void;
}

/** Shuts a kernel down, bounded by the kernel library; a failure is only logged. */
export async function shutDownKernel(handle: KernelHandle, log: { warn(message: string): void }): Promise<void> {
  await handle.shutdown().catch((error: unknown) => log.warn(`kernel shutdown failed: ${error}`));
  handle.dispose();
}

/**
 * Hands out started kernels already in a session's working directory: a warm one from the pool
 * (put in the session's folder as it is taken, KernelPlacement.moveInto), else a new one. Knows
 * about the worker's Jupyter server restarting (`serverRestarted`): a kernel that landed on the
 * old server is replaced once, and a start that failed because our own server had just died
 * waits, within its budget, for the new one.
 */
export class KernelStarter {
  private readonly pool?: KernelPool;
  /** Bumped by `serverRestarted`: kernels started before belong to a Jupyter server that is gone. */
  private epoch = 0;
  private closed = false;
  /** Kernel starts waiting for the Jupyter server to come back. */
  private readonly restartWaiters = new Set<() => void>();
  /** Kernel starts in flight or waiting their turn (session, per-call and pool kernels). */
  private readonly slots: StartSlots;

  constructor(
    private readonly config: WorkerConfig,
    private readonly jupyter: JupyterService,
    private readonly placement: KernelPlacement,
    private readonly log: StarterLog,
  ) {
    const { poolSize, startMaxMs, startsAtOnce } = config.kernels;
    this.slots = new StartSlots(startsAtOnce);
    if (poolSize > 0) {
      this.pool = new KernelPool({
        size: poolSize,
        start: () => this.startWarmKernel(startMaxMs),
        discarded: (handle) => placement.release(handle),
        log,
        refillDelayMs: POOL_REFILL_DELAY_MS,
      });
    }
  }

  /** Pool kernels ready to be taken. */
  get pooled(): number {
    return this.pool?.readyCount ?? 0;
  }

  /** Kernels being started right now. */
  get starting(): number {
    return this.slots.running;
  }

  /** After the Jupyter server is up: fill the warm pool in the background. */
  start(): void {
    this.pool?.start();
  }

  /** The Jupyter server was replaced: pool kernels and kernels being started belong to the old one. */
  serverRestarted(): void {
    this.epoch += 1;
    this.pool?.forget();
    for (const wake of [...this.restartWaiters]) wake();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.dispose();
  }

  /**
   * A started kernel in the session's working directory. A start takes its turn (StartSlots),
   * waiting until `notAfter` (epoch ms, the execution's deadline) at most; once it runs, it may
   * take `startTimeoutMs`, never past `notAfter`.
   */
  async kernelFor(ref: SessionRef, startTimeoutMs: number, notAfter = Infinity): Promise<KernelHandle> {
    for (let attempt = 0; ; attempt++) {
      const epoch = this.epoch;
      let handle: KernelHandle;
      try {
        handle = (await this.fromPool(ref)) ?? (await this.startSessionKernel(ref, startTimeoutMs, notAfter));
      } catch (error) {
        const ownServerDown = !this.config.jupyter.url && isConnectionFailure(error);
        if (attempt > 0 || !ownServerDown) throw error;
        if (epoch === this.epoch && !(await this.restarted(Math.min(startTimeoutMs, notAfter - Date.now())))) throw error;
        continue;
      }
      if (epoch === this.epoch || attempt > 0) return handle;
      handle.dispose();
    }
  }

  /**
   * A new kernel for the session. Kernels with users of their own start in a staging folder and
   * move into the session's folder once the worker has handed that folder to their uid.
   */
  private async startSessionKernel(ref: SessionRef, startTimeoutMs: number, notAfter: number): Promise<KernelHandle> {
    if (!this.jupyter.kernelUsers) return this.startKernel({ cwd: this.placement.workingDir(ref), timeoutMs: startTimeoutMs }, notAfter);
    const handle = await this.placement.startStaged((cwd) => this.startKernel({ cwd, timeoutMs: startTimeoutMs }, notAfter), true);
    if (await this.placement.moveInto(handle, ref)) return handle;
    this.discard(handle);
    throw new Error(`kernel ${handle.id} could not move into the session's folder`);
  }

  /** A kernel that will serve no session: shut down, and its staging folder deleted. */
  private discard(handle: KernelHandle): void {
    void shutDownKernel(handle, this.log).finally(() => this.placement.release(handle));
  }

  /**
   * Starts a kernel on the Jupyter server in its turn (its slot counts it while it starts).
   * @throws KernelStartTimeoutError when its turn did not come by `notAfter`.
   */
  private async startKernel(options: Parameters<JupyterService['client']['startKernel']>[0], notAfter = Infinity): Promise<KernelHandle> {
    const waitedSince = Date.now();
    if (!(await this.slots.take(notAfter))) throw new KernelStartTimeoutError(Date.now() - waitedSince);
    try {
      const timeoutMs = Number.isFinite(notAfter) ? Math.min(options.timeoutMs ?? Infinity, Math.max(1, notAfter - Date.now())) : options.timeoutMs;
      return await this.jupyter.client.startKernel({ ...options, timeoutMs });
    } finally {
      this.slots.release();
    }
  }

  /** Resolves true at the next Jupyter server restart, false after `ms`. */
  private restarted(ms: number): Promise<boolean> {
    if (ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (restarted: boolean) => {
        clearTimeout(timer);
        this.restartWaiters.delete(onRestart);
        resolve(restarted);
      };
      const onRestart = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.restartWaiters.add(onRestart);
    });
  }

  private async fromPool(ref: SessionRef): Promise<KernelHandle | undefined> {
    if (!this.pool || this.closed) return undefined;
    for (let handle = this.pool.take(); handle; handle = this.pool.take()) {
      if (await this.placement.moveInto(handle, ref)) return handle;
      this.discard(handle);
    }
    return undefined;
  }

  /**
   * A pool kernel in a staging folder of its own, warmed up: a fresh ipykernel answers its first
   * cells 2–4× slower than later ones (measured: 10–22 ms vs 5–7 ms), so two empty cells run
   * before it waits in the pool.
   */
  private async startWarmKernel(startMaxMs: number): Promise<KernelHandle> {
    const handle = await this.placement.startStaged((cwd) => this.startKernel({ cwd, timeoutMs: startMaxMs }), this.jupyter.kernelUsers);
    const ignore = { onStream: () => undefined, onDisplay: () => undefined };
    try {
      for (let i = 0; i < 2; i++) await handle.execute('None', ignore);
    } catch (error) {
      this.discard(handle);
      throw error;
    }
    return handle;
  }
}
