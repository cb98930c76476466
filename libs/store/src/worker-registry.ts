import type { ToolAnswer } from '@kernelfleet/contracts';
import type { RedisClient } from './redis-connection';
import type { KeySpace } from './keys';

/** What the api (or a Lua script) tells a worker. */
export type WorkerControlMessage =
  | { op: 'cancel'; executionId: string }
  /**
   * The session was disposed (SessionDisposal): a hint to check it against Redis now. Redis is
   * the truth; a worker that misses this finds out at its next reconcile.
   */
  | { op: 'dispose'; tenant: string; sessionId: string }
  /** A tool call of an execution running there was answered (tool-call-answer-3.lua). */
  | { op: 'tool-answer'; executionId: string; callId: string; answer?: ToolAnswer };

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
  /** Sessions being given a kernel here now (they count against `maxKernels`). */
  admitting?: number;
  /**
   * Per tenant: session kernels held here, how many of them may be evicted, and when the least
   * recently used of those was last used. See fleet-capacity.ts. Absent in older leases.
   */
  tenants?: Record<string, [held: number, evictable: number, oldestIdleAt: number]>;
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
    private readonly redis: RedisClient,
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
    await this.freshView();
    const lease = this.view.get(workerId);
    return lease !== undefined && !lease.draining;
  }

  /** The leases of the live workers, from the same view as `acceptsWork` (at most a second old). */
  async liveLeases(): Promise<WorkerLease[]> {
    await this.freshView();
    return [...this.view.values()];
  }

  private async freshView(): Promise<void> {
    if (Date.now() - this.viewAt <= VIEW_TTL_MS) return;
    this.viewLoading ??= this.loadView().finally(() => (this.viewLoading = undefined));
    await this.viewLoading;
  }

  /** Every registered worker with its lease, or null when the lease expired (lost). */
  async members(): Promise<Map<string, WorkerLease | null>> {
    const ids = await this.redis.zrange(this.keys.workers(), 0, -1);
    // One GET per lease, sent together: the leases live in as many slots as there are workers,
    // and a pipeline on a Redis Cluster must stay on one node.
    const leases = await Promise.all(ids.map((id) => this.redis.get(this.keys.workerLease(id))));
    return new Map(ids.map((id, i) => [id, leases[i] ? (JSON.parse(leases[i]) as WorkerLease) : null]));
  }

  /**
   * Registers the worker and renews its lease until `stop()`. A renewal still waiting (Redis
   * unreachable) is not stacked with more; when the connection comes back the lease is renewed
   * at once, before other workers' reapers can think this one lost (see WorkerReaper).
   *
   * The lease and the `workers` set are in different slots (no MULTI on a Redis Cluster): the
   * lease is written first and the membership only once it is there, so a reaper never finds
   * the worker registered without a lease (lost). A membership missing after a failed beat is
   * added by the next one; until then the worker just takes no sessions of its own.
   */
  async startHeartbeat(workerId: string, describe: () => Omit<WorkerLease, 'workerId' | 'at'>): Promise<void> {
    let inFlight: Promise<unknown> | undefined;
    const renew = async () => {
      await this.redis.set(this.keys.workerLease(workerId), JSON.stringify({ workerId, ...describe(), at: Date.now() }), 'PX', this.leaseMs);
      await this.redis.zadd(this.keys.workers(), 'NX', Date.now(), workerId);
    };
    const beat = () => {
      inFlight ??= renew().finally(() => (inFlight = undefined));
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

  /**
   * Leaves the fleet: no membership, then no lease (two slots; in this order a worker that
   * stopped halfway is never seen registered without a lease, i.e. lost).
   */
  async stop(workerId: string): Promise<void> {
    this.stopHeartbeat();
    try {
      await this.redis.zrem(this.keys.workers(), workerId);
      await this.redis.del(this.keys.workerLease(workerId));
    } catch {
      // Redis unreachable: the lease expires by itself and the reapers hand the rest back.
    }
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

  /**
   * Forgets a lost worker once nothing of it is left to recover. Its (empty) sets go first and
   * its membership last, each key on its own (they are in different slots): a reaper stopped
   * halfway leaves the worker registered and reaps it again, finding nothing.
   */
  async forget(workerId: string): Promise<void> {
    await this.redis.del(this.keys.workerSessions(workerId));
    await this.redis.del(this.keys.workerRunning(workerId));
    await this.redis.zrem(this.keys.workers(), workerId);
  }

  private async loadView(): Promise<void> {
    const members = await this.members();
    this.view = new Map([...members].filter((e): e is [string, WorkerLease] => e[1] !== null));
    this.viewAt = Date.now();
  }
}
