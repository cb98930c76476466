/** How often idle kernels are looked for: a quarter of the idle time, at most once a minute. */
export function cullCheckIntervalMs(idleMs: number): number {
  return Math.max(1, Math.min(60_000, Math.floor(idleMs / 4)));
}

/**
 * Runs `task` every `intervalMs` (never two at once) until stopped; a failure is logged as
 * `<what> failed: …` and the next tick runs as usual. What the task does is the caller's
 * (SessionKernels: culling idle kernels, reconciling kernels with Redis).
 */
export class PeriodicTask {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly what: string,
    readonly intervalMs: number,
    private readonly task: () => Promise<unknown>,
    private readonly log: { warn(message: string): void },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.task();
    } catch (error) {
      this.log.warn(`${this.what} failed: ${(error as Error)?.message ?? error}`);
    } finally {
      this.running = false;
    }
  }
}
