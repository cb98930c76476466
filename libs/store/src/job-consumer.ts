import { Worker, type Job } from 'bullmq';
import type Redis from 'ioredis';
import { RUN_EXECUTION_JOB, SHARED_QUEUE, type RunExecutionJob } from '@kernelfleet/contracts';
import type { KeySpace } from './keys';
import { workerQueueName } from './dispatcher';

export type RunExecutionHandler = (job: RunExecutionJob, queueName: string) => Promise<void>;

/**
 * Consumes a worker's own queue and the shared queue. Every job name has exactly one handler;
 * an unknown name fails the job instead of being silently dropped.
 */
export class JobConsumer {
  private readonly workers: Worker[] = [];

  constructor(
    private readonly connection: () => Redis,
    private readonly keys: KeySpace,
  ) {}

  start(workerId: string, concurrency: number, handler: RunExecutionHandler): void {
    for (const name of [workerQueueName(workerId), SHARED_QUEUE]) {
      const worker = new Worker(
        name,
        async (job: Job<RunExecutionJob>) => {
          if (job.name !== RUN_EXECUTION_JOB) throw new Error(`no handler for job ${job.name}`);
          await handler(job.data, name);
        },
        { connection: this.connection(), prefix: this.keys.bullPrefix(), concurrency, autorun: true },
      );
      worker.on('error', () => undefined);
      this.workers.push(worker);
    }
  }

  /** Stops taking jobs; waits for running handlers to finish unless `force`. */
  async close(force = false): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close(force)));
  }
}
