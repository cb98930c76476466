import type { KernelHandle } from '@kernelfleet/kernel';

export interface KernelPoolOptions {
  /** Started, idle kernels to keep ready; 0 means no pool (every take misses). */
  size: number;
  /** Starts one kernel (in a staging folder of its own, KernelPlacement.startStaged). */
  start: () => Promise<KernelHandle>;
  /** A started kernel the pool lets go of without handing it out (shut down or dropped). */
  discarded?: (handle: KernelHandle) => void;
  log: { warn(message: string): void; debug?(message: string): void };
  /**
   * Delay between a take and the start of its replacement (default 0). A kernel start costs the
   * Jupyter server and the machine about 0.6 s of CPU; begun at once, it competes with the cell
   * that took the kernel (measured: a new session's first result 42 ms with the refill at once,
   * 24 ms with it 1 s later; docs/benchmarks.md).
   */
  refillDelayMs?: number;
  /** Delay before retrying after a failed start, doubled per failure up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Kernels started ahead of need, so a new session (or a per-call execution) does not wait for a
 * kernel start (~0.6 s): the kernel is put in the session's folder as it is taken
 * (KernelPlacement.moveInto). Filling happens in the background, one
 * start at a time (starts compete with running code for CPU); a failed start is logged and
 * retried with backoff. A pool kernel that dies while waiting is dropped and replaced.
 */
export class KernelPool {
  private readonly ready: KernelHandle[] = [];
  private filling = false;
  private closed = false;
  /** Bumped when the Jupyter server goes away: starts begun before belong to the old server. */
  private epoch = 0;
  private backoffMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private wakeUp?: () => void;
  private refillTimer?: NodeJS.Timeout;

  constructor(private readonly options: KernelPoolOptions) {
    this.initialBackoffMs = options.initialBackoffMs ?? 1_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.backoffMs = this.initialBackoffMs;
  }

  get size(): number {
    return this.options.size;
  }

  /** Kernels ready to be taken now. */
  get readyCount(): number {
    return this.ready.length;
  }

  /** Begins (or resumes) filling the pool in the background. */
  start(): void {
    this.fill();
  }

  /**
   * A ready kernel (the caller owns it from now on), or undefined; the pool refills either way,
   * `refillDelayMs` later.
   */
  take(): KernelHandle | undefined {
    const handle = this.ready.shift();
    const delay = this.options.refillDelayMs ?? 0;
    if (delay <= 0) this.fill();
    else if (!this.refillTimer) {
      this.refillTimer = setTimeout(() => {
        this.refillTimer = undefined;
        this.fill();
      }, delay);
      this.refillTimer.unref();
    }
    return handle;
  }

  /**
   * The Jupyter server went away: its kernels are gone with it. Handles are closed without a
   * REST shutdown, starts in flight are discarded when they land, and filling starts over.
   */
  forget(): void {
    this.epoch += 1;
    for (const handle of this.ready.splice(0)) this.release(handle);
    this.backoffMs = this.initialBackoffMs;
    this.wakeUp?.();
    this.fill();
  }

  /** Shuts every ready kernel down; nothing is started any more. */
  async dispose(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refillTimer);
    this.wakeUp?.();
    await Promise.all(this.ready.splice(0).map((handle) => this.shutDown(handle)));
  }

  private fill(): void {
    if (this.filling || this.closed || this.ready.length >= this.options.size) return;
    this.filling = true;
    void this.fillLoop().finally(() => (this.filling = false));
  }

  private async fillLoop(): Promise<void> {
    while (!this.closed && this.ready.length < this.options.size) {
      const epoch = this.epoch;
      let handle: KernelHandle;
      try {
        handle = await this.options.start();
      } catch (error) {
        if (this.closed) return;
        if (epoch === this.epoch) {
          this.options.log.warn(`pool kernel start failed (retry in ${this.backoffMs} ms): ${(error as Error).message ?? error}`);
          await this.sleep(this.backoffMs);
          this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
        }
        continue;
      }
      if (this.closed) {
        await this.shutDown(handle);
        return;
      }
      if (epoch !== this.epoch) {
        this.release(handle);
        continue;
      }
      this.backoffMs = this.initialBackoffMs;
      this.ready.push(handle);
      this.options.log.debug?.(`pool kernel ${handle.id} ready (${this.ready.length}/${this.options.size})`);
      void handle.dead.then(() => this.drop(handle));
    }
  }

  /** A ready kernel died: out of the pool, and a replacement is started. */
  private drop(handle: KernelHandle): void {
    const index = this.ready.indexOf(handle);
    if (index < 0) return;
    this.ready.splice(index, 1);
    this.release(handle);
    this.options.log.warn(`pool kernel ${handle.id} died while idle; replacing it`);
    this.fill();
  }

  private async shutDown(handle: KernelHandle): Promise<void> {
    await handle.shutdown().catch((error: unknown) => this.options.log.warn(`pool kernel shutdown failed: ${error}`));
    this.release(handle);
  }

  /** Closes a kernel the pool will not hand out (gone already, or shut down). */
  private release(handle: KernelHandle): void {
    handle.dispose();
    this.options.discarded?.(handle);
  }

  /** Waits `ms`, or less when the pool is forgotten or disposed meanwhile. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wakeUp = done;
    });
  }
}
