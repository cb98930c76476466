import { WaitingError, Worker, type Job } from 'bullmq';
import type { RedisClient } from './redis-connection';
import { RUN_EXECUTION_JOB, SHARED_QUEUE, type RunExecutionJob } from '@kernelfleet/contracts';
import type { FairShare } from './fair-share';
import type { KeySpace } from './keys';
import { workerQueueName } from './dispatcher';

/** Handles a job; `'later'` puts it back at the head of its queue (the worker cannot take it now). */
export type RunExecutionHandler = (job: RunExecutionJob, queueName: string) => Promise<void | 'later'>;

/** How often a retired shared-queue consumer is checked for having stopped, to close it. */
const RETIRE_CHECK_MS = 250;

/**
 * Consumes a worker's own queue and the shared queue. Every job name has exactly one handler;
 * an unknown name fails the job instead of being silently dropped.
 *
 * The shared queue (new sessions) can be paused while the worker is at capacity; its own queue
 * (sessions it already holds) always runs.
 *
 * BullMQ details this relies on (bullmq 5): `pause(true)` stops fetching but lets a fetch that
 * is already blocked on the queue complete (while `pause()` would abort it by dropping the
 * blocking connection, which can swallow the wake-up marker of a job added at that instant and
 * leave the job unnoticed until some worker's block times out). A job fetched that way while we
 * are paused goes straight back to the head of the queue with a fresh marker (`moveToWait`).
 * `resume()` is a no-op until the paused worker's loop has ended, i.e. until its running jobs
 * (possibly a long execution) are done; resuming earlier starts a fresh consumer instead, and
 * the old one is closed once it has stopped.
 */
export class JobConsumer {
  private own?: Worker;
  private shared?: Worker;
  /** Paused shared-queue consumers replaced by a fresh one, closed once their loop ends. */
  private readonly retiring = new Set<Worker>();
  private retireTimer?: NodeJS.Timeout;
  private sharedPaused = false;
  private closed = false;
  private concurrency = 1;
  private handler?: RunExecutionHandler;
  /** Shared-queue consumers (a replacement and those it retires) share one command connection. */
  private sharedConnection?: RedisClient;

  constructor(
    private readonly connection: () => RedisClient,
    private readonly keys: KeySpace,
    /** BullMQ's job lock and stalled-job check follow the worker lease, not its 30 s default. */
    private readonly leaseMs: number,
    private readonly fairShare: FairShare,
  ) {}

  start(workerId: string, concurrency: number, handler: RunExecutionHandler): void {
    this.concurrency = concurrency;
    this.handler = handler;
    this.own = this.consume(workerQueueName(workerId));
    this.shared = this.consume(SHARED_QUEUE);
    if (this.sharedPaused) void this.shared.pause(true).catch(() => undefined);
  }

  /** Whether the shared queue is paused (as asked by `setSharedPaused`). */
  get isSharedPaused(): boolean {
    return this.sharedPaused;
  }

  /**
   * Stops (true) or resumes (false) taking jobs from the shared queue; jobs already running go
   * on. May be called before `start`: the state applies once consumption starts.
   */
  setSharedPaused(paused: boolean): void {
    if (paused === this.sharedPaused) return;
    this.sharedPaused = paused;
    const worker = this.shared;
    if (!worker || this.closed) return;
    if (paused) {
      void worker.pause(true).catch(() => undefined);
    } else if (!worker.isRunning()) {
      worker.resume();
    } else {
      this.retiring.add(worker);
      this.shared = this.consume(SHARED_QUEUE);
      this.closeRetired();
    }
  }

  /** Stops taking jobs; waits for running handlers to finish unless `force`. */
  async close(force = false): Promise<void> {
    this.closed = true;
    clearTimeout(this.retireTimer);
    const workers = [this.own, this.shared, ...this.retiring].filter((w): w is Worker => w !== undefined);
    await Promise.all(workers.map((w) => w.close(force)));
  }

  /** Closes retired consumers whose loop has ended (nothing running, no fetch in flight). */
  private closeRetired(): void {
    clearTimeout(this.retireTimer);
    for (const worker of this.retiring) {
      if (worker.isRunning()) continue;
      this.retiring.delete(worker);
      void worker.close().catch(() => undefined);
    }
    if (this.retiring.size && !this.closed) {
      this.retireTimer = setTimeout(() => this.closeRetired(), RETIRE_CHECK_MS);
      this.retireTimer.unref();
    }
  }

  private consume(name: string): Worker {
    const shared = name === SHARED_QUEUE;
    // BullMQ keeps a passed connection open (it closes only its own blocking duplicate).
    const connection = shared ? (this.sharedConnection ??= this.connection()) : this.connection();
    const worker = new Worker(
      name,
      async (job: Job<RunExecutionJob>, token?: string) => {
        if (shared && this.sharedPaused && !this.closed) {
          await job.moveToWait(token);
          throw new WaitingError();
        }
        if (job.name !== RUN_EXECUTION_JOB) throw new Error(`no handler for job ${job.name}`);
        // Not awaited: it only steers the priority of the tenant's next dispatches.
        if (job.id) void this.fairShare.taken(job.data.tenant, job.id).catch(() => undefined);
        if ((await this.handler!(job.data, name)) === 'later') {
          await job.moveToWait(token);
          throw new WaitingError();
        }
      },
      {
        connection,
        prefix: this.keys.bullPrefix(name),
        concurrency: this.concurrency,
        autorun: true,
        lockDuration: this.leaseMs,
        stalledInterval: this.leaseMs,
      },
    );
    worker.on('error', () => undefined);
    return worker;
  }
}
