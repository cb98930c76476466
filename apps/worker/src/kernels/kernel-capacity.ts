/**
 * A worker's capacity for session kernels: while those it holds and those being admitted (an
 * acquire for a session not held yet) fill `maxKernels`, the worker stops consuming the shared
 * queue, so new sessions go to other workers; its own queue keeps running. Pool kernels do not
 * count.
 */
export class KernelCapacity {
  private admitting = 0;
  private full = false;

  constructor(
    private readonly maxKernels: number,
    private readonly setSharedPaused: (paused: boolean) => void,
    private readonly log: (message: string) => void,
  ) {}

  /** An acquire for a session not held yet begins (`+1`) or ends (`-1`); `held` is the kernels held now. */
  admission(change: 1 | -1, held: number): void {
    this.admitting += change;
    this.update(held);
  }

  /** Pauses or resumes the shared queue for `held` kernels (and those being admitted); never paused once closed. */
  update(held: number, closed = false): void {
    const taken = held + this.admitting;
    const full = !closed && taken >= this.maxKernels;
    if (full === this.full) return;
    this.full = full;
    this.setSharedPaused(full);
    this.log(
      full
        ? `at capacity (${taken}/${this.maxKernels} session kernels): takes no new sessions`
        : `below capacity (${taken}/${this.maxKernels}): takes new sessions again`,
    );
  }
}
