import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore } from '@kernelfleet/store';
import { logFields } from '@kernelfleet/telemetry';
import { WORKER_CONFIG } from '../tokens';

/** A lost worker is forgotten once it has been empty this long (stale dispatch views expire). */
const FORGET_AFTER_MS = 5_000;

/**
 * Every worker watches the registry for workers whose lease expired (SIGKILL, crash, network
 * loss) and hands their work back: sessions re-homed with their state marked lost, queued lane
 * heads moved to the shared queue, the running execution ended `outcome_unknown` (or re-run once
 * with `retryOnKernelLoss`). A lock makes one reaper do each worker; every step is idempotent.
 *
 * After a Redis outage (or a restart of Redis) every lease may have expired at once, since
 * nobody could renew them and key expiry is absolute. So a reaper reaps only once its own
 * connection has been up for a whole lease: by then every live worker has renewed its lease
 * (each renews as soon as it reconnects), and a missing lease again means a lost worker.
 */
@Injectable()
export class WorkerReaper implements OnApplicationShutdown {
  private readonly logger = new Logger(WorkerReaper.name);
  private readonly lostSince = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private reaping = false;
  /** What this worker's reaps did since it started; for metrics. */
  readonly totals = { workersReaped: 0, sessionsRehomed: 0, executionsRecovered: 0 };

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly store: FleetStore,
  ) {}

  start(): void {
    const every = Math.max(250, Math.floor(this.config.store.workerLeaseMs / 4));
    this.timer = setInterval(() => void this.reapOnce(), every);
    this.timer.unref();
  }

  async reapOnce(): Promise<void> {
    if (this.reaping) return;
    this.reaping = true;
    try {
      if (!this.trustsLeases()) return;
      for (const [workerId, lease] of await this.store.registry.members()) {
        if (lease || workerId === this.config.workerId) {
          this.lostSince.delete(workerId);
          continue;
        }
        // Checked again: the read may have waited out an outage and found leases it cannot judge.
        if (!this.trustsLeases()) return;
        await this.reap(workerId);
      }
    } catch (error) {
      this.logger.warn(`reaping failed: ${error}`);
    } finally {
      this.reaping = false;
    }
  }

  /** Missing leases mean lost workers only after a whole lease of unbroken connection. */
  private trustsLeases(): boolean {
    return this.store.connectedFor(this.config.store.workerLeaseMs);
  }

  private async reap(workerId: string): Promise<void> {
    if (!(await this.store.registry.lockReap(workerId, this.config.store.workerLeaseMs))) return;
    // Read first: recovering a running execution releases its session before handBack lists the rest.
    const homed = (await this.store.sessions.homedOn(workerId)).length;
    const handed = await this.store.failover.handBack(workerId, { lost: true });
    const sessions = Math.max(homed, handed.sessions);
    const { recovered } = handed;
    if (!this.lostSince.has(workerId)) this.totals.workersReaped += 1;
    this.totals.sessionsRehomed += sessions;
    this.totals.executionsRecovered += recovered;
    if (sessions || recovered) {
      this.logger.warn(
        logFields(`worker ${workerId} lost: ${sessions} session(s) re-homed, ${recovered} running execution(s) recovered`, {
          lostWorkerId: workerId,
          sessions,
          recovered,
        }),
      );
    }
    const since = this.lostSince.get(workerId) ?? Date.now();
    this.lostSince.set(workerId, since);
    if (Date.now() - since > FORGET_AFTER_MS && (await this.store.failover.isEmpty(workerId))) {
      await this.store.registry.forget(workerId);
      this.lostSince.delete(workerId);
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}
