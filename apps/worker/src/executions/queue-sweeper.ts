import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { FleetStore } from '@kernelfleet/store';

const SWEEP_EVERY_MS = 1_000;

/**
 * Ends queued executions whose deadline passed while they waited behind others in their lane
 * (`timed_out`, phase `queue`), so a client waiting on one is answered at its deadline rather
 * than when its turn comes. Every worker sweeps; the finish script makes duplicates harmless.
 */
@Injectable()
export class QueueSweeper implements OnApplicationShutdown {
  private readonly logger = new Logger(QueueSweeper.name);
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(private readonly store: FleetStore) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  async sweep(now = Date.now()): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      for (const ref of await this.store.executions.overdue(now)) {
        const outcome = await this.store.lanes.endQueued(ref, 'timed_out');
        if (outcome.kind !== 'finished') await this.store.executions.forgetDeadline(ref);
      }
    } catch (error) {
      this.logger.warn(`sweep failed: ${error}`);
    } finally {
      this.sweeping = false;
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}
