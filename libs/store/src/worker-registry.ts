import type Redis from 'ioredis';
import type { KeySpace } from './keys';

/** What the api (or a Lua script) tells a worker. */
export type WorkerControlMessage =
  | { op: 'cancel'; executionId: string }
  | { op: 'dispose'; tenant: string; sessionId: string };

/** Liveness leases of workers: a worker is alive while its lease key exists. */
export class WorkerRegistry {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly keys: KeySpace,
    private readonly leaseMs = 10_000,
  ) {}

  async isAlive(workerId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.workerLease(workerId))) === 1;
  }

  /** Renews the lease every third of its length until `stop()`. */
  async startHeartbeat(workerId: string, describe: () => Record<string, unknown>): Promise<void> {
    const beat = () =>
      this.redis.set(this.keys.workerLease(workerId), JSON.stringify({ ...describe(), at: Date.now() }), 'PX', this.leaseMs);
    await beat();
    this.timer = setInterval(() => void beat().catch(() => undefined), Math.floor(this.leaseMs / 3));
    this.timer.unref();
  }

  /** Sends a control message (cancel, dispose) to one worker over pub/sub. */
  async sendControl(workerId: string, message: WorkerControlMessage): Promise<void> {
    await this.redis.publish(this.keys.workerControl(workerId), JSON.stringify(message));
  }

  async stop(workerId: string): Promise<void> {
    clearInterval(this.timer);
    await this.redis.del(this.keys.workerLease(workerId)).catch(() => undefined);
  }
}
