import { Inject, Injectable, Logger } from '@nestjs/common';
import type { KernelInfo } from '@kernelfleet/contracts';
import type { WorkerConfig } from '@kernelfleet/config';
import type { KernelHandle } from '@kernelfleet/kernel';
import { FleetStore, type KernelState, type SessionRef } from '@kernelfleet/store';
import { logFields } from '@kernelfleet/telemetry';
import { JupyterService } from '../jupyter/jupyter.service';
import { WORKER_CONFIG } from '../tokens';
import { cullCheckIntervalMs, IdleCuller } from './kernel-culler';
import { KernelPlacement } from './kernel-placement';
import { KernelStarter, shutDownKernel } from './kernel-starter';

/** A session homed on this worker and its kernel. */
interface SessionEntry {
  ref: SessionRef;
  /** Undefined once the kernel was lost (died, killed, failed to be replaced): the next acquire starts one. */
  handle?: KernelHandle;
  generation: number;
  dead: boolean;
  /** An execution of the session holds the kernel (from `acquire` until `done`). */
  inUse: boolean;
  lastUsedAt: number;
}

export interface AcquiredKernel {
  handle: KernelHandle;
  info: KernelInfo;
  /** Per-call kernels are shut down by the caller after the execution. */
  ephemeral: boolean;
}

const sessionKey = (ref: SessionRef) => `${ref.tenant}/${ref.sessionId}`;

/**
 * The kernels this worker holds, one per session homed here; new ones come from a
 * {@link KernelStarter} (its warm pool, else a fresh start). Executions of a session never overlap
 * (the lane guarantees it); starts, shutdowns and culls of one session are serialised here.
 *
 * Capacity: while it holds `maxKernels` session kernels (pool kernels do not count), the worker
 * stops consuming the shared queue, so new sessions go to other workers; its own queue (the
 * sessions it already holds) keeps running. Idle culling: a session kernel unused for `idleMs`
 * is shut down and the session released with state `culled`.
 */
@Injectable()
export class SessionKernels {
  private readonly logger = new Logger(SessionKernels.name);
  private readonly kernels = new Map<string, SessionEntry>();
  /** Per-session chain of starts, shutdowns and culls. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly starter: KernelStarter;
  private readonly culler: IdleCuller;
  /** Acquires in flight for sessions not held yet: they will take a slot. */
  private admitting = 0;
  private sharedPaused = false;
  private readonly placement: KernelPlacement;
  private closed = false;
  /** Session kernels culled since the process started; for metrics. */
  private culls = 0;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly jupyter: JupyterService,
    private readonly store: FleetStore,
  ) {
    this.placement = new KernelPlacement(config.jupyter.rootDir, { warn: (m) => this.logger.warn(m) });
    this.starter = new KernelStarter(config, jupyter, this.placement, this.logger);
    this.culler = new IdleCuller(cullCheckIntervalMs(config.kernels.idleMs), () => this.cullIdle(), { warn: (m) => this.logger.warn(m) });
    jupyter.onRestart(() => void this.forgetAll().catch((e: unknown) => this.logger.error(`forgetting kernels failed: ${e}`)));
  }

  /** Session kernels held (pool kernels excluded). */
  get size(): number {
    return this.kernels.size;
  }

  /** Pool kernels ready to be taken. */
  get pooled(): number {
    return this.starter.pooled;
  }

  /** Session kernels alive now (a session whose kernel died or was killed holds its slot without one). */
  get liveSessionKernels(): number {
    let live = 0;
    for (const entry of this.kernels.values()) if (entry.handle && !entry.dead) live += 1;
    return live;
  }

  /** Kernels being started right now. */
  get starting(): number {
    return this.starter.starting;
  }

  /** Session kernels culled since start. */
  get culled(): number {
    return this.culls;
  }

  /** After the Jupyter server is up: fill the warm pool in the background, start culling. */
  start(): void {
    this.starter.start();
    this.culler.start();
  }

  /** The session's kernel: reused, or started when it has none, was reset, or died. */
  async acquire(ref: SessionRef, opts: { reset: boolean; startTimeoutMs: number }): Promise<AcquiredKernel> {
    const key = sessionKey(ref);
    const admitting = !this.kernels.has(key);
    if (admitting) {
      this.admitting += 1;
      this.updateCapacity();
    }
    try {
      return await this.locked(key, () => this.acquireLocked(key, ref, opts));
    } finally {
      if (admitting) {
        this.admitting -= 1;
        this.updateCapacity();
      }
    }
  }

  private async acquireLocked(key: string, ref: SessionRef, opts: { reset: boolean; startTimeoutMs: number }): Promise<AcquiredKernel> {
    let entry = this.kernels.get(key);
    if (entry?.handle && !entry.dead && !opts.reset) {
      if (await this.store.sessions.isHeldBy(ref, this.config.workerId, entry.generation)) {
        // A per-call execution of the session had the folder handed to its own kernel's uid.
        await this.placement.reclaim(entry.handle, ref);
        entry.inUse = true;
        entry.lastUsedAt = Date.now();
        return { handle: entry.handle, ephemeral: false, info: this.info(entry.generation, false, false) };
      }
      // Reaped while this worker could not renew its lease (or replaced elsewhere): the session
      // was handed on with its state marked lost, so this kernel must not serve it any more.
      this.logger.warn(`session ${key} was taken from this worker; its kernel ${entry.handle.id} goes`);
      this.kernels.delete(key);
      await this.shutDown(entry);
      entry = undefined;
    }
    const before = await this.store.sessions.get(ref);
    // State is lost when the session had a kernel that nobody asked to go away.
    const hadKernel =
      (entry !== undefined || (before !== null && before.kernel.generation > 0 && before.kernel.state !== 'none')) &&
      (await this.store.sessions.latestKernelWasUsed(ref));
    const lossUntold = before !== null && before.kernel.state !== 'none' && (await this.store.sessions.isStateLossPending(ref));
    const stateLost = !opts.reset && (hadKernel || lossUntold);
    if (stateLost !== lossUntold) await this.store.sessions.setStateLossPending(ref, stateLost);
    if (entry) {
      // The old kernel goes (reset, or dead); the session keeps its slot here meanwhile.
      entry.inUse = true;
      await this.shutDown(entry);
    }
    const handle = await this.starter.kernelFor(ref, opts.startTimeoutMs);
    let generation: number;
    try {
      generation = await this.store.sessions.beginGeneration(ref, this.config.workerId);
    } catch (error) {
      void this.shutDownHandle(handle);
      throw error;
    }
    const next: SessionEntry = { ref, handle, generation, dead: false, inUse: true, lastUsedAt: Date.now() };
    void handle.dead.then(() => (next.dead = true));
    this.kernels.set(key, next); // counted already while admitting (see acquire)
    await this.store.sessions.setKernelState(ref, 'idle');
    return { handle, ephemeral: false, info: this.info(generation, stateLost, true) };
  }

  /** The execution that acquired the session's kernel has ended: the idle clock starts now. */
  done(ref: SessionRef): void {
    const entry = this.kernels.get(sessionKey(ref));
    if (!entry?.inUse) return;
    entry.inUse = false;
    entry.lastUsedAt = Date.now();
  }

  /** The uid a kernel runs as, when kernels run as users of their own (else undefined). */
  uidOf(handle: KernelHandle): number | undefined {
    return this.placement.uidOf(handle);
  }

  /** A fresh kernel for one per-call execution; never registered with the session. */
  async acquireEphemeral(ref: SessionRef, startTimeoutMs: number): Promise<AcquiredKernel> {
    const handle = await this.starter.kernelFor(ref, startTimeoutMs);
    return { handle, ephemeral: true, info: this.info(1, false, true) };
  }

  /** A per-call kernel's execution is over: the kernel goes. */
  async releaseEphemeral(handle: KernelHandle): Promise<void> {
    await this.shutDownHandle(handle);
  }

  /** The session's kernel was killed or died: forget it; the next execution gets a new one. */
  async lose(ref: SessionRef): Promise<void> {
    const key = sessionKey(ref);
    await this.locked(key, async () => {
      const entry = this.kernels.get(key);
      if (entry) await this.shutDown(entry);
      await this.store.sessions.setKernelState(ref, 'dead');
    });
  }

  /** Shuts the session's kernel down on request (DELETE session). */
  async dispose(ref: SessionRef): Promise<void> {
    const key = sessionKey(ref);
    await this.locked(key, async () => {
      const entry = this.kernels.get(key);
      this.kernels.delete(key);
      try {
        if (entry) await this.shutDown(entry);
        await this.store.sessions.release(ref, this.config.workerId, 'none');
      } finally {
        this.updateCapacity();
      }
    });
  }

  /**
   * Shuts down session kernels unused for `idleMs` (never one an execution holds) and releases
   * their sessions as `culled` (`dead` if the kernel had died meanwhile): their next execution
   * goes to whichever worker takes it and reports the lost state. Answers how many went.
   */
  async cullIdle(now = Date.now()): Promise<number> {
    const { idleMs } = this.config.kernels;
    const idle = (entry: SessionEntry, at: number) => !entry.inUse && at - entry.lastUsedAt >= idleMs;
    const culls = [...this.kernels.entries()]
      .filter(([, entry]) => idle(entry, now))
      .map(([key, entry]) =>
        this.locked(key, async () => {
          // Re-checked under the session's lock: an execution may have taken it meanwhile.
          if (this.closed || this.kernels.get(key) !== entry || !idle(entry, Math.max(now, Date.now()))) return false;
          this.kernels.delete(key);
          const state: KernelState = entry.handle && !entry.dead ? 'culled' : 'dead';
          const kernelId = entry.handle?.id;
          try {
            await this.shutDown(entry);
            await this.store.sessions.release(entry.ref, this.config.workerId, state);
          } finally {
            // Only now a new session may take the slot: this one is released by then.
            this.updateCapacity();
          }
          this.culls += 1;
          this.logger.log(
            logFields(`culled ${state === 'culled' ? `idle kernel ${kernelId}` : 'dead kernel'} of session ${key}`, {
              tenant: entry.ref.tenant,
              sessionId: entry.ref.sessionId,
            }),
          );
          return true;
        }),
      );
    return (await Promise.all(culls)).filter(Boolean).length;
  }

  /**
   * The Jupyter server went away (and was restarted): every kernel it held is gone. Handles are
   * closed without a REST shutdown, each session is released as `lost` (its next execution says
   * so), and the pool refills from the new server.
   */
  async forgetAll(): Promise<void> {
    this.starter.serverRestarted();
    const entries = [...this.kernels.values()];
    this.kernels.clear();
    this.updateCapacity();
    for (const entry of entries) {
      entry.handle?.dispose();
      entry.handle = undefined;
      entry.dead = true;
    }
    if (entries.length) this.logger.warn(`Jupyter server restarted: ${entries.length} session kernel(s) lost`);
    await Promise.all(
      entries.map((entry) =>
        this.store.sessions
          .release(entry.ref, this.config.workerId, 'lost')
          .catch((error: unknown) => this.logger.warn(`releasing ${sessionKey(entry.ref)} failed: ${error}`)),
      ),
    );
  }

  async disposeAll(): Promise<void> {
    this.closed = true;
    this.culler.stop();
    const entries = [...this.kernels.values()];
    this.kernels.clear();
    await Promise.all([this.starter.close(), ...entries.map((entry) => this.shutDown(entry))]);
  }

  /** Pauses the shared queue while the session kernels (and those being admitted) fill capacity. */
  private updateCapacity(): void {
    const held = this.kernels.size + this.admitting;
    const full = !this.closed && held >= this.config.kernels.maxKernels;
    if (full === this.sharedPaused) return;
    this.sharedPaused = full;
    this.store.consumer.setSharedPaused(full);
    this.logger.log(
      full
        ? `at capacity (${held}/${this.config.kernels.maxKernels} session kernels): takes no new sessions`
        : `below capacity (${held}/${this.config.kernels.maxKernels}): takes new sessions again`,
    );
  }

  /** Runs `work` after every earlier start, shutdown or cull of the same session. */
  private locked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return result;
  }

  /** The entry's kernel is shut down; the entry itself (the session's slot) stays unless removed. */
  private async shutDown(entry: SessionEntry): Promise<void> {
    const handle = entry.handle;
    entry.handle = undefined;
    entry.dead = true;
    if (handle) await this.shutDownHandle(handle);
  }

  private shutDownHandle(handle: KernelHandle): Promise<void> {
    return shutDownKernel(handle, this.logger);
  }

  private info(generation: number, stateLost: boolean, restarted: boolean): KernelInfo {
    return { workerId: this.config.workerId, generation, stateLost, restarted };
  }
}
