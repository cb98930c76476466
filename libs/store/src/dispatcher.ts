import { Queue } from 'bullmq';
import type { RedisClient } from './redis-connection';
import { RUN_EXECUTION_JOB, SHARED_QUEUE, WORKER_QUEUE_PREFIX, type RunExecutionJob } from '@kernelfleet/contracts';
import type { FairShare } from './fair-share';
import type { ExecutionRef, KeySpace } from './keys';
import { StoreUnavailableError } from './redis-connection';
import type { SessionRepository } from './session-repository';
import type { WorkerRegistry } from './worker-registry';
import { WorkerInboxes } from './worker-inbox';

/** The BullMQ job states counted per queue for metrics (completed jobs are removed at once). */
export const QUEUE_JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'paused', 'failed'] as const;
export type QueueJobState = (typeof QUEUE_JOB_STATES)[number];

export interface QueueDepth {
  queue: string;
  counts: Record<QueueJobState, number>;
}

/**
 * A BullMQ queue of ours: its hash-tagged prefix, and connection errors (Redis unreachable) left
 * to surface on the commands; unhandled, BullMQ would print each reconnect attempt's error.
 */
export function openQueue(name: string, connection: RedisClient, keys: KeySpace): Queue {
  const queue = new Queue(name, { connection, prefix: keys.bullPrefix(name) });
  queue.on('error', () => undefined);
  return queue;
}

/** The priority of a lane head that goes to the front of its queue (see Dispatcher.dispatch). */
export const FRONT = 0;

export function workerQueueName(workerId: string): string {
  return `${WORKER_QUEUE_PREFIX}${workerId}`;
}

/**
 * Sends a lane head on: into the inbox of the worker holding the session's kernel while that
 * worker is alive (WorkerInboxes), else onto the shared BullMQ queue, whose job id is the
 * execution id, so a repeated dispatch of the same head is a no-op while the job exists. With
 * fair share on, the head's place in either comes from its tenant's clock (see FairShare).
 */
export class Dispatcher {
  private readonly queues = new Map<string, Queue>();
  /** Queues made and closed by Nest (QueuesModule), used here but not closed here. */
  private readonly adopted = new Set<Queue>();
  readonly inboxes: WorkerInboxes;

  constructor(
    private readonly connection: RedisClient,
    private readonly keys: KeySpace,
    private readonly sessions: SessionRepository,
    private readonly registry: WorkerRegistry,
    private readonly retentionSeconds: number,
    private readonly fairShare: FairShare,
  ) {
    this.inboxes = new WorkerInboxes(connection, keys);
  }

  /**
   * `home` may be passed when the caller already read it (accept does). `attempt` > 0 names a
   * re-run after a kernel loss, dispatched under a job id of its own. `knownPriority`: the head
   * was already counted as waiting by the admit or release script (see FairShare); `FRONT`: the
   * head was handed back by a worker that is gone or leaving and goes ahead of every head
   * placed by fair share (BullMQ serves jobs without a priority first, in the order added).
   * Answers where the head went: the shared queue's name or the home worker's queue name.
   */
  async dispatch(ref: ExecutionRef, knownHome?: string | null, attempt = 0, knownPriority?: number): Promise<string> {
    const home = knownHome === undefined ? await this.sessions.homeOf(ref) : knownHome;
    if (home && (await this.registry.acceptsWork(home))) {
      await this.toWorker(home, ref, knownPriority);
      return workerQueueName(home);
    }
    await this.enqueue(SHARED_QUEUE, ref, attempt > 0 ? `${ref.executionId}-a${attempt}` : ref.executionId, knownPriority);
    return SHARED_QUEUE;
  }

  /**
   * Places a lane head in the inbox of `workerId`, which holds its session's kernel; false when
   * it was already waiting there.
   */
  async toWorker(workerId: string, ref: ExecutionRef, knownPriority?: number): Promise<boolean> {
    return this.inboxes.add(workerId, ref, knownPriority ?? (await this.fairShare.priorityFor(ref.tenant, ref.executionId)));
  }

  /** Adds a lane head's job to a BullMQ queue (the shared one). */
  async enqueue(queueName: string, ref: ExecutionRef, jobId = ref.executionId, knownPriority?: number): Promise<void> {
    // A fail-fast connection refuses commands while down, but a Queue created meanwhile would
    // wait for the connection before its first command: refuse here instead.
    if (this.connection.options.enableOfflineQueue === false && this.connection.status !== 'ready') {
      throw new StoreUnavailableError();
    }
    const job: RunExecutionJob = { tenant: ref.tenant, sessionId: ref.sessionId, executionId: ref.executionId };
    const priority = knownPriority === FRONT ? undefined : (knownPriority ?? (await this.fairShare.priorityFor(ref.tenant, jobId)));
    await this.queue(queueName).add(RUN_EXECUTION_JOB, job, {
      jobId,
      priority,
      attempts: 1,
      removeOnComplete: true,
      removeOnFail: { age: this.retentionSeconds },
    });
  }

  /**
   * Jobs by state in the shared queue, and the inbox of every registered worker (live or lost
   * but not yet forgotten): its heads as `waiting`, the executions running on it as `active`.
   * A few round trips per queue: callers cache (metrics scrapes).
   */
  async queueDepths(): Promise<QueueDepth[]> {
    const workers = [...(await this.registry.members()).keys()].sort();
    const shared = await this.queue(SHARED_QUEUE).getJobCounts(...QUEUE_JOB_STATES);
    const none = Object.fromEntries(QUEUE_JOB_STATES.map((s) => [s, 0])) as Record<QueueJobState, number>;
    const inboxes = await Promise.all(
      workers.map(async (workerId) => {
        const [waiting, active] = await Promise.all([this.inboxes.depth(workerId), this.connection.scard(this.keys.workerRunning(workerId))]);
        return { queue: workerQueueName(workerId), counts: { ...none, waiting, active } };
      }),
    );
    return [{ queue: SHARED_QUEUE, counts: { ...none, ...shared } as Record<QueueJobState, number> }, ...inboxes];
  }

  /** Adds jobs to `queue` from now on, rather than through a queue of its own of that name. */
  adopt(queue: Queue): Queue {
    queue.on('error', () => undefined);
    this.queues.set(queue.name, queue);
    this.adopted.add(queue);
    return queue;
  }

  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = openQueue(name, this.connection, this.keys);
      this.queues.set(name, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].filter((q) => !this.adopted.has(q)).map((q) => q.close()));
  }
}
