/** How often idle kernels are looked for: a quarter of the idle time, at most once a minute. */
export function cullCheckIntervalMs(idleMs: number): number {
  return Math.max(1, Math.min(60_000, Math.floor(idleMs / 4)));
}

/**
 * Runs `cull` every `intervalMs` (never two at once) until stopped. What counts as idle and
 * what culling does is the caller's (SessionKernels.cullIdle).
 */
export class IdleCuller {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    readonly intervalMs: number,
    private readonly cull: () => Promise<unknown>,
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
      await this.cull();
    } catch (error) {
      this.log.warn(`idle kernel check failed: ${error}`);
    } finally {
      this.running = false;
    }
  }
}
