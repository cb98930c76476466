import { Inject, Injectable, Logger } from '@nestjs/common';
import type { KernelInfo } from '@kernelfleet/contracts';
import type { WorkerConfig } from '@kernelfleet/config';
import type { KernelHandle } from '@kernelfleet/kernel';
import { FleetStore, type SessionRef } from '@kernelfleet/store';
import { JupyterService } from '../jupyter/jupyter.service';
import { WORKER_CONFIG } from '../tokens';

interface LiveKernel {
  handle: KernelHandle;
  generation: number;
  dead: boolean;
}

export interface AcquiredKernel {
  handle: KernelHandle;
  info: KernelInfo;
  /** Per-call kernels are shut down by the caller after the execution. */
  ephemeral: boolean;
}

const sessionKey = (ref: SessionRef) => `${ref.tenant}/${ref.sessionId}`;

/**
 * The kernels this worker holds, one per session homed here. Executions of a session never
 * overlap (the lane guarantees it), so there is no concurrent start for one session.
 */
@Injectable()
export class SessionKernels {
  private readonly logger = new Logger(SessionKernels.name);
  private readonly kernels = new Map<string, LiveKernel>();

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly jupyter: JupyterService,
    private readonly store: FleetStore,
  ) {}

  get size(): number {
    return this.kernels.size;
  }

  /** The session's kernel: reused, or started when it has none, was reset, or died. */
  async acquire(ref: SessionRef, opts: { reset: boolean; startTimeoutMs: number }): Promise<AcquiredKernel> {
    const key = sessionKey(ref);
    const live = this.kernels.get(key);
    if (live && !live.dead && !opts.reset) {
      return { handle: live.handle, ephemeral: false, info: this.info(live.generation, false, false) };
    }
    const before = await this.store.sessions.get(ref);
    // State is lost when the session had a kernel that nobody asked to go away.
    const hadKernel = live !== undefined || (before !== null && before.kernel.generation > 0 && before.kernel.state !== 'none');
    const stateLost = !opts.reset && hadKernel;
    if (live) await this.discard(key, live);
    const handle = await this.jupyter.client.startKernel({ cwd: this.workingDir(ref), timeoutMs: opts.startTimeoutMs });
    const generation = await this.store.sessions.beginGeneration(ref, this.config.workerId);
    const entry: LiveKernel = { handle, generation, dead: false };
    void handle.dead.then(() => (entry.dead = true));
    this.kernels.set(key, entry);
    await this.store.sessions.setKernelState(ref, 'idle');
    return { handle, ephemeral: false, info: this.info(generation, stateLost, true) };
  }

  /** A fresh kernel for one per-call execution; never registered with the session. */
  async acquireEphemeral(ref: SessionRef, startTimeoutMs: number): Promise<AcquiredKernel> {
    const handle = await this.jupyter.client.startKernel({ cwd: this.workingDir(ref), timeoutMs: startTimeoutMs });
    return { handle, ephemeral: true, info: this.info(1, false, true) };
  }

  /** The session's kernel was killed or died: forget it; the next execution gets a new one. */
  async lose(ref: SessionRef): Promise<void> {
    const key = sessionKey(ref);
    const live = this.kernels.get(key);
    if (live) await this.discard(key, live);
    await this.store.sessions.setKernelState(ref, 'dead');
  }

  /** Shuts the session's kernel down on request (DELETE session). */
  async dispose(ref: SessionRef): Promise<void> {
    const key = sessionKey(ref);
    const live = this.kernels.get(key);
    if (live) await this.discard(key, live);
    await this.store.sessions.release(ref, this.config.workerId, 'none');
  }

  async disposeAll(): Promise<void> {
    await Promise.all([...this.kernels.entries()].map(([key, live]) => this.discard(key, live)));
  }

  private async discard(key: string, live: LiveKernel): Promise<void> {
    this.kernels.delete(key);
    await live.handle.shutdown().catch((error: unknown) => this.logger.warn(`kernel shutdown failed: ${error}`));
    live.handle.dispose();
  }

  /** `<tenant>/<session>` with `.` and `:` escaped, so ids like `..` stay one plain folder. */
  private workingDir(ref: SessionRef): string {
    const escape = (id: string) => id.replace(/[.:%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    return `${escape(ref.tenant)}/${escape(ref.sessionId)}`;
  }

  private info(generation: number, stateLost: boolean, restarted: boolean): KernelInfo {
    return { workerId: this.config.workerId, generation, stateLost, restarted };
  }
}
