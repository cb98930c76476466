import { randomBytes } from 'node:crypto';
import { IdempotencyKeys } from './idempotency-keys';
import { Submissions } from './submissions';
import { ToolCalls } from './tool-calls';
import type { RedisClient } from './redis-connection';
import type { StoreConfig } from '@kernelfleet/config';
import { ApiKeyRepository } from './api-key-repository';
import { Dispatcher } from './dispatcher';
import { ExecutionRepository } from './execution-repository';
import { FairShare } from './fair-share';
import { FileTransfers } from './file-transfer';
import { Failover } from './failover';
import { FleetMonitor } from './fleet-monitor';
import { FleetStats } from './fleet-stats';
import { KeySpace } from './keys';
import { LiveEvents } from './live-events';
import { ApiProcessChannel } from './api-process-channel';
import { createRedis, type ConnectionRole } from './redis-connection';
import { SessionDisposal } from './session-disposal';
import { SessionLanes } from './session-lanes';
import { SessionRepository } from './session-repository';
import { TenantQuotas } from './tenant-quotas';
import { WorkerRegistry } from './worker-registry';
import { InboxConsumer } from './worker-inbox';

export interface FleetStoreOptions extends Omit<StoreConfig, 'fairDispatch'> {
  /** Default true (see StoreConfig). */
  fairDispatch?: boolean;
  maxReplayEvents?: number;
  /** Name shown in `CLIENT LIST`, e.g. `api` or `worker-3`. */
  clientName: string;
  /**
   * Refuse commands at once while Redis is unreachable (the api: answer 503, never hang)
   * instead of holding them until it is back (the worker: nothing it writes is lost).
   */
  failFast?: boolean;
}

/**
 * The one door to Redis and BullMQ. Apps get their repositories, dispatcher and live events from
 * here, their queues and job consumer from QueuesModule, and never import ioredis or bullmq
 * themselves.
 */
export class FleetStore {
  readonly keys: KeySpace;
  readonly executions: ExecutionRepository;
  readonly sessions: SessionRepository;
  readonly registry: WorkerRegistry;
  readonly dispatcher: Dispatcher;
  readonly lanes: SessionLanes;
  /** Disposing sessions: `DELETE /v1/sessions/{id}`, dispose by owner, `DELETE /v1/sessions`. */
  readonly disposal: SessionDisposal;
  readonly failover: Failover;
  readonly apiKeys: ApiKeyRepository;
  readonly quotas: TenantQuotas;
  readonly fairShare: FairShare;
  readonly stats: FleetStats;
  readonly toolCalls: ToolCalls;
  /** Session files' bytes between an api replica and the home worker, through Redis. */
  readonly transfers: FileTransfers;
  readonly submissions: Submissions;
  readonly idempotency: IdempotencyKeys;
  /** What BullMQ queues and workers send commands through (each worker blocks on a duplicate). */
  readonly queueConnection: RedisClient;
  private readonly extra: RedisClient[] = [];
  private fleetMonitor?: FleetMonitor;
  private liveEvents?: LiveEvents;
  private apiChannel?: ApiProcessChannel;
  /** Since when the command connection has been ready; undefined while it is not. */
  private readySince?: number;

  private constructor(
    readonly redis: RedisClient,
    private readonly options: FleetStoreOptions,
  ) {
    this.keys = new KeySpace(options.keyPrefix);
    if (redis.status === 'ready') this.readySince = Date.now();
    redis.on('ready', () => (this.readySince = Date.now()));
    redis.on('close', () => (this.readySince = undefined));
    const retention = { retentionSeconds: options.retentionSeconds, maxReplayEvents: options.maxReplayEvents ?? 20_000 };
    this.fairShare = new FairShare(redis, this.keys, options.fairDispatch ?? true);
    this.quotas = new TenantQuotas(redis, this.keys, this.fairShare, options.retentionSeconds);
    this.stats = new FleetStats(redis, this.keys);
    this.executions = new ExecutionRepository(redis, this.keys, retention, this.quotas, this.fairShare, this.stats);
    this.sessions = new SessionRepository(redis, this.keys, options.retentionSeconds);
    this.registry = new WorkerRegistry(redis, this.keys, options.workerLeaseMs);
    this.queueConnection = this.connection('producer', 'queue');
    this.dispatcher = new Dispatcher(this.queueConnection, this.keys, this.sessions, this.registry, options.retentionSeconds, this.fairShare);
    this.lanes = new SessionLanes(this.executions, this.dispatcher);
    this.failover = new Failover(this.executions, this.sessions, this.lanes, this.dispatcher);
    this.disposal = new SessionDisposal(this.executions, this.sessions, this.lanes, this.registry);
    this.apiKeys = new ApiKeyRepository(redis, this.keys);
    this.toolCalls = new ToolCalls(redis, this.keys, retention);
    this.transfers = new FileTransfers(redis, this.keys);
    this.idempotency = new IdempotencyKeys(redis, this.keys);
    this.submissions = new Submissions(redis, this.keys, this.quotas, this.executions, this.dispatcher, this.registry, this.fairShare, this.idempotency);
  }

  static connect(options: FleetStoreOptions): FleetStore {
    return new FleetStore(createRedis(options.redisUrl, 'command', options.clientName, options.failFast), options);
  }

  /** Whether the command connection is up right now. */
  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  /**
   * Whether the command connection has been up without a break for at least `ms`. After an
   * outage every lease may have expired at once (Redis expiry is absolute); a worker that has
   * been back for a whole lease has seen every live worker renew its own.
   */
  connectedFor(ms: number, now = Date.now()): boolean {
    return this.readySince !== undefined && now - this.readySince >= ms;
  }

  /** Resolves once the command connection is ready, or after `timeoutMs` (whichever first). */
  async whenConnected(timeoutMs: number): Promise<boolean> {
    if (this.connected) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(this.connected), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }

  /** The consumer of a worker's inbox (worker-inbox.ts), blocking on a connection of its own. */
  inboxConsumer(workerId: string, concurrency: number, onError: (error: unknown) => void): InboxConsumer {
    return new InboxConsumer(this.connection('producer', 'inbox'), this.keys.workerInbox(workerId), concurrency, onError);
  }

  /** Pub/sub of live events, on its own connection, created on first use. */
  get live(): LiveEvents {
    this.liveEvents ??= new LiveEvents(this.connection('subscriber', 'live'));
    return this.liveEvents;
  }

  /**
   * This api process's channel and the requests waiting or following on it (`wait=true`, the
   * event streams of its submits), created on first use: the channel is subscribed from then on.
   */
  get apiProcessChannel(): ApiProcessChannel {
    this.apiChannel ??= new ApiProcessChannel(this.live, this.keys.apiProcessChannel(randomBytes(8).toString('hex')));
    return this.apiChannel;
  }

  /** Read-only views of the fleet and its queues (the admin dashboard), created on first use. */
  get monitor(): FleetMonitor {
    this.fleetMonitor ??= new FleetMonitor(this.redis, this.keys, this.registry, this.stats, this.connection('producer', 'monitor'));
    return this.fleetMonitor;
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.stats.flush();
    await this.dispatcher.close();
    await this.fleetMonitor?.close();
    await this.liveEvents?.close();
    for (const connection of this.extra) connection.disconnect();
    this.redis.disconnect();
  }

  private connection(role: Exclude<ConnectionRole, 'command'>, purpose: string): RedisClient {
    const connection = createRedis(this.options.redisUrl, role, `${this.options.clientName}-${purpose}`, this.options.failFast);
    this.extra.push(connection);
    return connection;
  }
}
