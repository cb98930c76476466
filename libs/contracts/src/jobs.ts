/** wire contract: do not rename. BullMQ queue that any worker with room consumes. */
export const SHARED_QUEUE = 'kf-shared';
/** wire contract: do not rename. Prefix of a worker's queue name: its inbox, in metrics and on the dashboard. */
export const WORKER_QUEUE_PREFIX = 'kf-worker-';
/** wire contract: do not rename. The one job name: run the head of a session lane. */
export const RUN_EXECUTION_JOB = 'run-execution';

/** Payload of a `run-execution` job. The execution itself lives in Redis; this points at it. */
export interface RunExecutionJob {
  tenant: string;
  sessionId: string;
  executionId: string;
}
