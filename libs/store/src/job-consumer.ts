import type { OnApplicationShutdown } from '@nestjs/common';
import { WaitingError, Worker, type Job } from 'bullmq';
import { RUN_EXECUTION_JOB, SHARED_QUEUE, type RunExecutionJob } from '@kernelfleet/contracts';
import type { InboxConsumer } from './worker-inbox';

/**
 * Handles a lane head, from the shared queue or from the worker's inbox (`queueName` is then
 * the worker's queue name); `'later'` puts a shared job back at the head of its queue (the
 * worker cannot take it now).
 */
export type RunExecutionHandler = (job: RunExecutionJob, queueName: string) => Promise<void | 'later'>;

/** A queue's processor as Nest made it (an @nestjs/bullmq WorkerHost): its BullMQ worker. */
export interface QueueProcessorHost {
  readonly worker: Worker;
}

/** How often a retired shared-queue consumer is checked for having stopped, to close it. */
const RETIRE_CHECK_MS = 250;

/**
 * Consumes a worker's inbox (WorkerInboxes: the heads of sessions it holds) and the shared
 * BullMQ queue. Every job name has exactly one handler; an unknown name fails the job instead of
 * being silently dropped.
 *
 * The shared queue's BullMQ worker is Nest's (QueuesModule.forWorker): created by `start` (not
 * before the worker can run jobs), closed by Nest at shutdown if `close` has not already. The
 * shared queue (new sessions) can be paused while the worker is at capacity; the inbox (sessions
 * it already holds) is always taken.
 *
 * BullMQ details this relies on (bullmq 5): `pause(true)` stops fetching but lets a fetch that
 * is already blocked on the queue complete (while `pause()` would abort it by dropping the
 * blocking connection, which can swallow the wake-up marker of a job added at that instant and
 * leave the job unnoticed until some worker's block times out). A job fetched that way while we
 * are paused goes straight back to the head of the queue with a fresh marker (`moveToWait`).
 * `resume()` is a no-op until the paused worker's loop has ended, i.e. until its running jobs
 * (possibly a long execution) are done; resuming earlier starts a fresh consumer instead, a twin
 * of Nest's, and the old one is closed once it has stopped (docs/architecture.md, *BullMQ and
 * Nest*).
 */
export class JobConsumer implements OnApplicationShutdown {
  private readonly hosts = new Map<string, QueueProcessorHost>();
  private shared?: Worker;
  /** Paused shared-queue consumers replaced by a fresh one, closed once their loop ends. */
  private readonly retiring = new Set<Worker>();
  private retireTimer?: NodeJS.Timeout;
  private sharedPaused = false;
  private closed = false;
  private handler?: RunExecutionHandler;

  constructor(
    /** The worker's queue name (its inbox's, in metrics and logs). */
    private readonly ownQueue: string,
    private readonly inbox: InboxConsumer,
    /** Has Nest create the processors' workers (BullRegistrar.register). */
    private readonly createWorkers: () => void,
  ) {}

  /** Called by each queue's processor as Nest builds it. */
  serve(queueName: string, host: QueueProcessorHost): void {
    this.hosts.set(queueName, host);
  }

  /** `reoffer` places the worker's queued heads in its inbox again (see InboxConsumer). */
  start(handler: RunExecutionHandler, reoffer: () => Promise<void>): void {
    this.handler = handler;
    this.createWorkers();
    this.shared = this.workerOf(SHARED_QUEUE);
    this.inbox.start((job) => handler(job, this.ownQueue).then(() => undefined), reoffer);
    // A shared queue paused before the start stays unstarted until resumed (resume() runs it).
    if (!this.sharedPaused) run(this.shared);
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
      this.shared = new Worker(SHARED_QUEUE, (job: Job<RunExecutionJob>, token?: string) => this.process(SHARED_QUEUE, job, token), {
        ...worker.opts,
        autorun: true,
      });
      this.shared.on('error', () => undefined);
      this.closeRetired();
    }
  }

  /** A job of `queueName`, as its processor is handed it. */
  async process(queueName: string, job: Job<RunExecutionJob>, token?: string): Promise<void> {
    if (queueName === SHARED_QUEUE && this.sharedPaused && !this.closed) {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (job.name !== RUN_EXECUTION_JOB) throw new Error(`no handler for job ${job.name}`);
    if ((await this.handler!(job.data, queueName)) === 'later') {
      await job.moveToWait(token);
      throw new WaitingError();
    }
  }

  /** Stops taking jobs; waits for running handlers to finish unless `force`. */
  async close(force = false): Promise<void> {
    this.closed = true;
    clearTimeout(this.retireTimer);
    const workers = [this.shared, ...this.retiring].filter((w): w is Worker => w !== undefined);
    await Promise.all([this.inbox.close(force), ...workers.map((w) => w.close(force))]);
  }

  /** Nest closes the workers it made; this also closes the fresh ones (nothing left after `close`). */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  private workerOf(queueName: string): Worker {
    const host = this.hosts.get(queueName);
    if (!host) throw new Error(`no processor for queue ${queueName}`);
    // Connection errors are expected during an outage; BullMQ retries by itself.
    host.worker.on('error', () => undefined);
    return host.worker;
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
}

/** Starts a worker made with `autorun: false`, as BullMQ's autorun would. */
function run(worker: Worker): void {
  worker.run().catch((error: unknown) => worker.emit('error', error as Error));
}
