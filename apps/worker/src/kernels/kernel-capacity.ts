/**
 * A worker's capacity for session kernels: while those it holds and those being admitted (an
 * acquire for a session not held yet) fill `maxKernels`, the worker is full and stops consuming
 * the shared queue, so new sessions go to other workers; its own queue keeps running. Pool
 * kernels do not count.
 *
 * A full worker still takes new sessions while it is the fleet's evictor (docs/capacity.md): no
 * worker has a free slot and this one holds the idle kernel to evict first. Each new session it
 * takes then evicts one of its idle kernels.
 */
export class KernelCapacity {
  private admitting = 0;
  private evictor = false;
  private paused = false;

  constructor(
    private readonly maxKernels: number,
    private readonly setSharedPaused: (paused: boolean) => void,
    private readonly log: (message: string) => void,
  ) {}

  /** Sessions being admitted now (they count against `maxKernels`). */
  get admissions(): number {
    return this.admitting;
  }

  /** Whether `held` kernels and those being admitted fill the worker. */
  isFull(held: number): boolean {
    return held + this.admitting >= this.maxKernels;
  }

  /** An acquire for a session not held yet begins (`+1`) or ends (`-1`); `held` is the kernels held now. */
  admission(change: 1 | -1, held: number): void {
    this.admitting += change;
    this.update(held);
  }

  /** Whether this worker evicts for the fleet's next new session (decided by its capacity check). */
  setEvictor(evictor: boolean, held: number): void {
    if (evictor !== this.evictor) this.log(evictor ? 'full, and holds the idle kernel to evict first: takes new sessions by evicting' : 'no longer evicts for new sessions');
    this.evictor = evictor;
    this.update(held);
  }

  /** Pauses or resumes the shared queue for `held` kernels (and those being admitted); never paused once closed. */
  update(held: number, closed = false): void {
    const full = !closed && this.isFull(held);
    const paused = full && !this.evictor;
    if (paused === this.paused) return;
    this.paused = paused;
    this.setSharedPaused(paused);
    const taken = held + this.admitting;
    this.log(
      paused
        ? `at capacity (${taken}/${this.maxKernels} session kernels): takes no new sessions`
        : full
          ? `at capacity (${taken}/${this.maxKernels} session kernels): takes new sessions by evicting idle kernels`
          : `below capacity (${taken}/${this.maxKernels}): takes new sessions again`,
    );
  }
}
