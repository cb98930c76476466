import type Redis from 'ioredis';
import type { KeySpace } from './keys';

/** What the api (or a Lua script) tells a worker. */
export type WorkerControlMessage =
  | { op: 'cancel'; executionId: string }
  | { op: 'dispose'; tenant: string; sessionId: string };

/** What a worker says of itself in its lease. */
export interface WorkerLease {
  workerId: string;
  bootId: string;
  maxKernels: number;
  kernels: number;
  running: number;
  concurrency: number;
  /** Draining: alive, finishing what it runs, but no longer a home for sessions. */
  draining: boolean;
  at: number;
}

/** How long the dispatch view of live workers may be stale. */
const VIEW_TTL_MS = 1_000;

/**
 * The worker registry. Every worker is a member of the `workers` set and holds a lease (a key
 * with a TTL, renewed every third of it, carrying its capacity and load). A worker is alive
 * while its lease exists; a member without a lease is lost and gets reaped.
 */
export class WorkerRegistry {
  private timer?: NodeJS.Timeout;
  private onReconnect?: () => void;
  private view = new Map<string, WorkerLease>();
  private viewAt = 0;
  private viewLoading?: Promise<void>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: KeySpace,
    readonly leaseMs: number,
  ) {}

  async isAlive(workerId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.workerLease(workerId))) === 1;
  }

  /** Whether the process that claimed an execution still lives (same id and boot id). */
  async isRunnerAlive(workerId: string, bootId: string | undefined): Promise<boolean> {
    const raw = await this.redis.get(this.keys.workerLease(workerId));
    if (!raw) return false;
    return bootId === undefined || (JSON.parse(raw) as WorkerLease).bootId === bootId;
  }

  /**
   * Whether a worker should get a session's executions: alive and not draining. Answers from a
   * view at most a second old (a dispatch then costs no extra round trip); a job routed to a
   * worker that died meanwhile is moved on by the reaper.
   */
  async acceptsWork(workerId: string): Promise<boolean> {
    if (Date.now() - this.viewAt > VIEW_TTL_MS) {
      this.viewLoading ??= this.loadView().finally(() => (this.viewLoading = undefined));
      await this.viewLoading;
    }
    const lease = this.view.get(workerId);
    return lease !== undefined && !lease.draining;
  }

  /** Every registered worker with its lease, or null when the lease expired (lost). */
  async members(): Promise<Map<string, WorkerLease | null>> {
    const ids = await this.redis.zrange(this.keys.workers(), 0, -1);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.get(this.keys.workerLease(id));
    const replies = (await pipeline.exec()) ?? [];
    return new Map(ids.map((id, i) => [id, replies[i]?.[1] ? (JSON.parse(replies[i][1] as string) as WorkerLease) : null]));
  }

  /**
   * Registers the worker and renews its lease until `stop()`. A renewal still waiting (Redis
   * unreachable) is not stacked with more; when the connection comes back the lease is renewed
   * at once, before other workers' reapers can think this one lost (see WorkerReaper).
   */
  async startHeartbeat(workerId: string, describe: () => Omit<WorkerLease, 'workerId' | 'at'>): Promise<void> {
    let inFlight: Promise<unknown> | undefined;
    const beat = () => {
      inFlight ??= this.redis
        .multi()
        .set(this.keys.workerLease(workerId), JSON.stringify({ workerId, ...describe(), at: Date.now() }), 'PX', this.leaseMs)
        .zadd(this.keys.workers(), 'NX', Date.now(), workerId)
        .exec()
        .finally(() => (inFlight = undefined));
      return inFlight;
    };
    this.stopHeartbeat();
    await beat();
    this.timer = setInterval(() => void beat().catch(() => undefined), Math.floor(this.leaseMs / 3));
    this.timer.unref();
    this.onReconnect = () => void beat().catch(() => undefined);
    this.redis.on('ready', this.onReconnect);
  }

  /** Sends a control message (cancel, dispose) to one worker over pub/sub. */
  async sendControl(workerId: string, message: WorkerControlMessage): Promise<void> {
    await this.redis.publish(this.keys.workerControl(workerId), JSON.stringify(message));
  }

  /** Leaves the fleet: no lease, no membership. */
  async stop(workerId: string): Promise<void> {
    this.stopHeartbeat();
    await this.redis
      .multi()
      .del(this.keys.workerLease(workerId))
      .zrem(this.keys.workers(), workerId)
      .exec()
      .catch(() => undefined);
  }

  private stopHeartbeat(): void {
    clearInterval(this.timer);
    if (this.onReconnect) this.redis.off('ready', this.onReconnect);
    this.onReconnect = undefined;
  }

  /** Takes the right to reap a lost worker for `ms` (one reaper at a time). */
  async lockReap(workerId: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.reapLock(workerId), '1', 'PX', ms, 'NX')) === 'OK';
  }

  /** Forgets a lost worker once nothing of it is left to recover. */
  async forget(workerId: string): Promise<void> {
    await this.redis.multi().zrem(this.keys.workers(), workerId).del(this.keys.workerSessions(workerId), this.keys.workerRunning(workerId)).exec();
  }

  private async loadView(): Promise<void> {
    const members = await this.members();
    this.view = new Map([...members].filter((e): e is [string, WorkerLease] => e[1] !== null));
    this.viewAt = Date.now();
  }
}
