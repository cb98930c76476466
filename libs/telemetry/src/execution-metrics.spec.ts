import type { Execution } from '@kernelfleet/contracts';
import { Registry } from 'prom-client';
import { executionDurations, executionFinishedLine, ExecutionMetrics } from './execution-metrics';

const execution = (status: Execution['status'], timings: Execution['timings']): Execution => ({
  executionId: 'x1',
  sessionId: 's1',
  seq: 1,
  status,
  kernelMode: 'session',
  timings,
});

describe('execution metrics', () => {
  it('derives queue wait and run time in seconds from the timings; none for an execution that never started', () => {
    expect(executionDurations(execution('completed', { acceptedAt: 1_000, deadlineAt: 9_000, startedAt: 1_250, finishedAt: 3_250 }))).toEqual({
      queueWaitSeconds: 0.25,
      runSeconds: 2,
    });
    expect(executionDurations(execution('cancelled', { acceptedAt: 1_000, deadlineAt: 9_000, finishedAt: 2_000 }))).toEqual({});
    // Clocks of two machines may disagree a little: never a negative duration.
    expect(executionDurations(execution('completed', { acceptedAt: 1_000, deadlineAt: 9_000, startedAt: 990, finishedAt: 995 })).queueWaitSeconds).toBe(0);
  });

  it('counts a terminal state by tenant and status and observes the histograms', async () => {
    const registry = new Registry();
    const metrics = new ExecutionMetrics(registry);
    metrics.finished('acme', execution('completed', { acceptedAt: 0, deadlineAt: 30_000, startedAt: 20, finishedAt: 70 }));
    metrics.finished('acme', execution('cancelled', { acceptedAt: 0, deadlineAt: 30_000, finishedAt: 5 }));
    const text = await registry.metrics();
    expect(text).toContain('kernelfleet_executions_total{tenant="acme",status="completed"} 1');
    expect(text).toContain('kernelfleet_executions_total{tenant="acme",status="cancelled"} 1');
    expect(text).toContain('kernelfleet_execution_queue_wait_seconds_count{tenant="acme"} 1');
    expect(text).toContain('kernelfleet_execution_queue_wait_seconds_bucket{le="0.025",tenant="acme"} 1');
    expect(text).toContain('kernelfleet_execution_run_duration_seconds_count{tenant="acme",status="completed"} 1');
    expect(text).not.toContain('status="cancelled"} 0');
    expect(text).not.toMatch(/x1|s1/);
  });
});

describe('the execution finished log line', () => {
  it('names the execution, its session and tenant, and how it ended', () => {
    const ended = {
      ...execution('outcome_unknown', { acceptedAt: 1_000, deadlineAt: 9_000, startedAt: 1_100, finishedAt: 4_100 }),
      phase: 'run' as const,
      kernel: { workerId: 'w-lost', generation: 3, stateLost: true, restarted: false },
    };
    expect(executionFinishedLine('acme', ended)).toEqual({
      msg: 'execution finished',
      executionId: 'x1',
      sessionId: 's1',
      tenant: 'acme',
      seq: 1,
      status: 'outcome_unknown',
      phase: 'run',
      kernelWorkerId: 'w-lost',
      kernelGeneration: 3,
      queueWaitMs: 100,
      runMs: 3_000,
    });
    expect(executionFinishedLine('acme', execution('cancelled', { acceptedAt: 1_000, deadlineAt: 9_000, finishedAt: 1_500 }))).toEqual({
      msg: 'execution finished',
      executionId: 'x1',
      sessionId: 's1',
      tenant: 'acme',
      seq: 1,
      status: 'cancelled',
    });
  });
});
