import { Queue } from 'bullmq';
import type { RedisClient } from './redis-connection';
import { RUN_EXECUTION_JOB, SHARED_QUEUE, WORKER_QUEUE_PREFIX, type RunExecutionJob } from '@kernelfleet/contracts';
import type { FairShare } from './fair-share';
import type { ExecutionRef, KeySpace } from './keys';
import { StoreUnavailableError } from './redis-connection';
import type { SessionRepository } from './session-repository';
import type { WorkerRegistry } from './worker-registry';

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
 * Turns a lane head into a BullMQ job: on the queue of the worker holding the session's kernel
 * while that worker is alive, else on the shared queue. The job id is the execution id, so a
 * repeated dispatch of the same head is a no-op while the job exists. With fair share on, the
 * job's BullMQ priority is its tenant's number of waiting heads (see FairShare).
 */
export class Dispatcher {
  private readonly queues = new Map<string, Queue>();
  /** Queues made and closed by Nest (QueuesModule), used here but not closed here. */
  private readonly adopted = new Set<Queue>();

  constructor(
    private readonly connection: RedisClient,
    private readonly keys: KeySpace,
    private readonly sessions: SessionRepository,
    private readonly registry: WorkerRegistry,
    private readonly retentionSeconds: number,
    private readonly fairShare: FairShare,
  ) {}

  /**
   * `home` may be passed when the caller already read it (accept does). `attempt` > 0 names a
   * re-run after a kernel loss, dispatched under a job id of its own. `knownPriority`: the job
   * was already counted as waiting by the admit or release script (see FairShare); `FRONT`: the
   * head was handed back by a worker that is gone or leaving and goes ahead of every head
   * placed by fair share (BullMQ serves jobs without a priority first, in the order added).
   */
  async dispatch(ref: ExecutionRef, knownHome?: string | null, attempt = 0, knownPriority?: number): Promise<string> {
    const home = knownHome === undefined ? await this.sessions.homeOf(ref) : knownHome;
    const target = home && (await this.registry.acceptsWork(home)) ? workerQueueName(home) : SHARED_QUEUE;
    await this.enqueue(target, ref, attempt > 0 ? `${ref.executionId}-a${attempt}` : ref.executionId, knownPriority);
    return target;
  }

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
   * Jobs by state in the shared queue and in the queue of every registered worker (live or
   * lost but not yet forgotten). A few round trips per queue: callers cache (metrics scrapes).
   */
  async queueDepths(): Promise<QueueDepth[]> {
    const workers = [...(await this.registry.members()).keys()].sort();
    const names = [SHARED_QUEUE, ...workers.map(workerQueueName)];
    return Promise.all(
      names.map(async (name) => {
        // Counting needs no Queue kept for a worker that may be gone for good.
        const cached = this.queues.get(name);
        const queue = cached ?? openQueue(name, this.connection, this.keys);
        try {
          const counts = await queue.getJobCounts(...QUEUE_JOB_STATES);
          return { queue: name, counts: Object.fromEntries(QUEUE_JOB_STATES.map((s) => [s, counts[s] ?? 0])) as Record<QueueJobState, number> };
        } finally {
          if (!cached) await queue.close().catch(() => undefined);
        }
      }),
    );
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
