import { DelayedError, Worker, type Job } from 'bullmq';
import type Redis from 'ioredis';
import { RUN_EXECUTION_JOB, SHARED_QUEUE, type RunExecutionJob } from '@kernelfleet/contracts';
import type { KeySpace } from './keys';
import { workerQueueName } from './dispatcher';

export type RunExecutionHandler = (job: RunExecutionJob, queueName: string) => Promise<void>;

/** A shared-queue job fetched just as consumption paused goes back to the queue for this long. */
const DEFER_MS = 100;

/**
 * Consumes a worker's own queue and the shared queue. Every job name has exactly one handler;
 * an unknown name fails the job instead of being silently dropped.
 *
 * The shared queue (new sessions) can be paused while the worker is at capacity; its own queue
 * (sessions it already holds) always runs.
 */
export class JobConsumer {
  private own?: Worker;
  private shared?: Worker;
  /** Paused shared-queue consumers still finishing jobs they took before the pause. */
  private readonly retiring = new Set<Worker>();
  private sharedPaused = false;
  private closed = false;
  private concurrency = 1;
  private handler?: RunExecutionHandler;
  /** Shared-queue consumers (a replacement and the one it retires) share one command connection. */
  private sharedConnection?: Redis;

  constructor(
    private readonly connection: () => Redis,
    private readonly keys: KeySpace,
  ) {}

  start(workerId: string, concurrency: number, handler: RunExecutionHandler): void {
    this.concurrency = concurrency;
    this.handler = handler;
    this.own = this.consume(workerQueueName(workerId));
    this.shared = this.consume(SHARED_QUEUE);
    if (this.sharedPaused) void this.shared.pause().catch(() => undefined);
  }

  /** Whether the shared queue is paused (as asked by `setSharedPaused`). */
  get isSharedPaused(): boolean {
    return this.sharedPaused;
  }

  /**
   * Stops (true) or resumes (false) taking jobs from the shared queue. Jobs already running go
   * on. May be called before `start`; the state applies once consumption starts.
   */
  setSharedPaused(paused: boolean): void {
    if (paused === this.sharedPaused) return;
    this.sharedPaused = paused;
    const worker = this.shared;
    if (!worker || this.closed) return;
    if (paused) {
      // Not awaited: pause() resolves only when the running jobs end. It aborts the blocking
      // fetch at once, so no job is taken after this point (see the processor's check too).
      void worker.pause().catch(() => undefined);
    } else if (!worker.isRunning()) {
      worker.resume();
    } else {
      // resume() is a no-op until the paused consumer's running jobs end (a long execution
      // may be one): a fresh consumer takes over now, the old one closes when they are done.
      this.retiring.add(worker);
      void worker
        .close()
        .catch(() => undefined)
        .finally(() => this.retiring.delete(worker));
      this.shared = this.consume(SHARED_QUEUE);
    }
  }

  /** Stops taking jobs; waits for running handlers to finish unless `force`. */
  async close(force = false): Promise<void> {
    this.closed = true;
    const workers = [this.own, this.shared, ...this.retiring].filter((w): w is Worker => w !== undefined);
    await Promise.all(workers.map((w) => w.close(force)));
  }

  private consume(name: string): Worker {
    const shared = name === SHARED_QUEUE;
    // BullMQ keeps a passed connection open (only its own blocking duplicate is closed).
    const connection = shared ? (this.sharedConnection ??= this.connection()) : this.connection();
    const worker = new Worker(
      name,
      async (job: Job<RunExecutionJob>, token?: string) => {
        if (shared && this.sharedPaused && !this.closed) {
          // Fetched as the pause began: back to the queue for another worker (or for us later).
          await job.moveToDelayed(Date.now() + DEFER_MS, token);
          throw new DelayedError();
        }
        if (job.name !== RUN_EXECUTION_JOB) throw new Error(`no handler for job ${job.name}`);
        await this.handler!(job.data, name);
      },
      { connection, prefix: this.keys.bullPrefix(), concurrency: this.concurrency, autorun: true },
    );
    worker.on('error', () => undefined);
    return worker;
  }
}
