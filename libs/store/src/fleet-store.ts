import type Redis from 'ioredis';
import type { StoreConfig } from '@kernelfleet/config';
import { Dispatcher } from './dispatcher';
import { ExecutionRepository } from './execution-repository';
import { FairShare } from './fair-share';
import { Failover } from './failover';
import { JobConsumer } from './job-consumer';
import { KeySpace } from './keys';
import { LiveEvents } from './live-events';
import { createRedis } from './redis-connection';
import { SessionLanes } from './session-lanes';
import { SessionRepository } from './session-repository';
import { TenantQuotas } from './tenant-quotas';
import { WorkerRegistry } from './worker-registry';

export interface FleetStoreOptions extends Omit<StoreConfig, 'fairDispatch'> {
  /** Default true (see StoreConfig). */
  fairDispatch?: boolean;
  maxReplayEvents?: number;
  /** Name shown in `CLIENT LIST`, e.g. `api` or `worker-3`. */
  clientName: string;
}

/**
 * The one door to Redis and BullMQ. Apps get their repositories, dispatcher, consumer and live
 * events from here and never import ioredis or bullmq themselves.
 */
export class FleetStore {
  readonly keys: KeySpace;
  readonly executions: ExecutionRepository;
  readonly sessions: SessionRepository;
  readonly registry: WorkerRegistry;
  readonly dispatcher: Dispatcher;
  readonly lanes: SessionLanes;
  readonly failover: Failover;
  readonly quotas: TenantQuotas;
  readonly fairShare: FairShare;
  private readonly extra: Redis[] = [];
  private liveEvents?: LiveEvents;
  private jobConsumer?: JobConsumer;

  private constructor(
    readonly redis: Redis,
    private readonly options: FleetStoreOptions,
  ) {
    this.keys = new KeySpace(options.keyPrefix);
    const retention = { retentionSeconds: options.retentionSeconds, maxReplayEvents: options.maxReplayEvents ?? 20_000 };
    this.fairShare = new FairShare(redis, this.keys, options.fairDispatch ?? true);
    this.quotas = new TenantQuotas(redis, this.keys, this.fairShare);
    this.executions = new ExecutionRepository(redis, this.keys, retention, this.quotas);
    this.sessions = new SessionRepository(redis, this.keys, options.retentionSeconds);
    this.registry = new WorkerRegistry(redis, this.keys, options.workerLeaseMs);
    const bull = this.connection('blocking', 'queue');
    this.dispatcher = new Dispatcher(bull, this.keys, this.sessions, this.registry, options.retentionSeconds, this.fairShare);
    this.lanes = new SessionLanes(this.executions, this.dispatcher);
    this.failover = new Failover(this.executions, this.sessions, this.lanes, this.dispatcher);
  }

  static connect(options: FleetStoreOptions): FleetStore {
    return new FleetStore(createRedis(options.redisUrl, 'command', options.clientName), options);
  }

  /** Pub/sub of live events, on its own connection, created on first use. */
  get live(): LiveEvents {
    this.liveEvents ??= new LiveEvents(this.connection('subscriber', 'live'));
    return this.liveEvents;
  }

  get consumer(): JobConsumer {
    this.jobConsumer ??= new JobConsumer(() => this.connection('blocking', 'consumer'), this.keys, this.options.workerLeaseMs, this.fairShare);
    return this.jobConsumer;
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.jobConsumer?.close(true);
    await this.dispatcher.close();
    await this.liveEvents?.close();
    for (const connection of this.extra) connection.disconnect();
    this.redis.disconnect();
  }

  private connection(role: 'blocking' | 'subscriber', purpose: string): Redis {
    const connection = createRedis(this.options.redisUrl, role, `${this.options.clientName}-${purpose}`);
    this.extra.push(connection);
    return connection;
  }
}
