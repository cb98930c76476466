import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore, fleetIsFull, fleetRoom, noCapacityMessage, QUEUE_TIMEOUT_MESSAGE, type ExecutionRef } from '@kernelfleet/store';
import { logFields } from '@kernelfleet/telemetry';
import { WORKER_CONFIG } from '../tokens';

const SWEEP_EVERY_MS = 1_000;

/**
 * Ends queued executions whose deadline passed while they waited (`timed_out`, phase `queue`),
 * so a client waiting on one is answered at its deadline rather than when its turn comes. Every
 * worker sweeps; the finish script makes duplicates harmless.
 *
 * An execution of a session with no kernel anywhere that timed out while the fleet was full
 * (every worker's slots taken, none idle long enough to evict) says so (docs/capacity.md).
 */
@Injectable()
export class QueueSweeper implements OnApplicationShutdown {
  private readonly logger = new Logger(QueueSweeper.name);
  private timer?: NodeJS.Timeout;
  private sweeping = false;
  /** Executions this worker ended because the fleet had no kernel for them; for metrics. */
  private capacityTimeouts = 0;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly store: FleetStore,
  ) {}

  /** Queue timeouts ended by this worker that a full fleet caused, since start. */
  get noCapacityTimeouts(): number {
    return this.capacityTimeouts;
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  async sweep(now = Date.now()): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      for (const ref of await this.store.executions.overdue(now)) {
        const outcome = await this.endOverdue(ref);
        if (outcome !== 'finished') await this.store.executions.forgetDeadline(ref);
      }
    } catch (error) {
      this.logger.warn(`sweep failed: ${error}`);
    } finally {
      this.sweeping = false;
    }
  }

  /** Ends a queued execution past its deadline, naming a full fleet as the cause when it was. */
  async endOverdue(ref: ExecutionRef): Promise<'finished' | 'not_queued'> {
    const room = (await this.store.sessions.homeOf(ref)) === null ? fleetRoom(await this.store.registry.liveLeases()) : null;
    const full = room !== null && fleetIsFull(room);
    const message = full ? noCapacityMessage(room, this.config.kernels.evictMinIdleMs) : QUEUE_TIMEOUT_MESSAGE;
    const outcome = await this.store.lanes.endQueued(ref, 'timed_out', message);
    if (outcome.kind !== 'finished') return 'not_queued';
    if (full) {
      this.capacityTimeouts += 1;
      this.logger.warn(logFields(`execution ${ref.executionId} timed out waiting for a kernel: ${message}`, { ...ref, ...room }));
    }
    return 'finished';
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}
