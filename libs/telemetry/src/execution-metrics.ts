import type { Execution } from '@kernelfleet/contracts';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Queue wait: from accept to the claim by a worker. Seconds. */
export const QUEUE_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Run: from the claim (kernel start included) to the terminal state; deadlines reach 600 s. Seconds. */
export const RUN_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** What one terminal execution adds to the histograms, in seconds (absent: it never started). */
export function executionDurations(execution: Execution): { queueWaitSeconds?: number; runSeconds?: number } {
  const { acceptedAt, startedAt, finishedAt } = execution.timings;
  if (startedAt === undefined) return {};
  const seconds = (ms: number) => Math.max(0, ms) / 1_000;
  return {
    queueWaitSeconds: seconds(startedAt - acceptedAt),
    ...(finishedAt === undefined ? {} : { runSeconds: seconds(finishedAt - startedAt) }),
  };
}

/**
 * The execution metrics both apps expose. `finished` is called where a terminal state is
 * written (`SessionLanes.onFinished`: the finish script writes it once per execution, whichever
 * process gets there), so summed over the api and the workers each execution counts once.
 */
export class ExecutionMetrics {
  readonly executions: Counter<'tenant' | 'status'>;
  readonly queueWait: Histogram<'tenant'>;
  readonly runDuration: Histogram<'tenant' | 'status'>;

  constructor(registry: Registry) {
    this.executions = new Counter({
      name: 'kernelfleet_executions_total',
      help: 'Executions that reached a terminal state, by tenant and status (counted once, by the process that wrote it)',
      labelNames: ['tenant', 'status'],
      registers: [registry],
    });
    this.queueWait = new Histogram({
      name: 'kernelfleet_execution_queue_wait_seconds',
      help: 'Time from accept to the start of an execution (observed when it ends; executions that never started are not observed)',
      labelNames: ['tenant'],
      buckets: QUEUE_WAIT_BUCKETS,
      registers: [registry],
    });
    this.runDuration = new Histogram({
      name: 'kernelfleet_execution_run_duration_seconds',
      help: 'Time from the start of an execution (kernel start included) to its terminal state, by tenant and status',
      labelNames: ['tenant', 'status'],
      buckets: RUN_DURATION_BUCKETS,
      registers: [registry],
    });
  }

  finished(tenant: string, execution: Execution): void {
    this.executions.inc({ tenant, status: execution.status });
    const { queueWaitSeconds, runSeconds } = executionDurations(execution);
    if (queueWaitSeconds !== undefined) this.queueWait.observe({ tenant }, queueWaitSeconds);
    if (runSeconds !== undefined) this.runDuration.observe({ tenant, status: execution.status }, runSeconds);
  }
}

/**
 * The `execution finished` log line of a terminal state this process wrote: the execution's ids,
 * status, phase, kernel generation and durations in milliseconds.
 */
export function executionFinishedLine(tenant: string, execution: Execution): { msg: string; [field: string]: unknown } {
  const { acceptedAt, startedAt, finishedAt } = execution.timings;
  return {
    msg: 'execution finished',
    executionId: execution.executionId,
    sessionId: execution.sessionId,
    tenant,
    seq: execution.seq,
    status: execution.status,
    ...(execution.phase ? { phase: execution.phase } : {}),
    ...(execution.kernel ? { kernelWorkerId: execution.kernel.workerId, kernelGeneration: execution.kernel.generation } : {}),
    ...(execution.file ? { fileOp: execution.file.op } : {}),
    ...(startedAt === undefined ? {} : { queueWaitMs: startedAt - acceptedAt }),
    ...(startedAt === undefined || finishedAt === undefined ? {} : { runMs: finishedAt - startedAt }),
  };
}
