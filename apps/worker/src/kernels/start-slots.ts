/**
 * At most `size` kernel starts at once on a worker, the rest waiting in arrival order. A start
 * costs about 0.6 s of CPU (Python, ipykernel's imports, the Jupyter server's side): 48 new
 * sessions starting at once on a 2-core worker all ran past KERNEL_START_MAX_MS and failed, where
 * in turns each start takes about its own time (docs/capacity.md, "Kernel starts in turns").
 */
export class StartSlots {
  private free: number;
  private readonly waiting: Array<{ grant: () => void }> = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Starts holding a slot now (running). */
  get running(): number {
    return this.size - this.free;
  }

  /** Starts waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Takes a slot, waiting in turn; resolves false (and takes none) when none came by `notAfter`
   * (epoch ms). The caller gives a slot it took back with `release`.
   */
  take(notAfter = Infinity): Promise<boolean> {
    if (this.free > 0 && this.waiting.length === 0) {
      this.free -= 1;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.waiting.push(waiter);
      if (Number.isFinite(notAfter)) {
        timer = setTimeout(() => {
          const index = this.waiting.indexOf(waiter);
          if (index >= 0) this.waiting.splice(index, 1);
          resolve(false);
        }, Math.max(0, notAfter - Date.now()));
      }
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next.grant();
    else this.free += 1;
  }
}
