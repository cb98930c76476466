import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore } from '@kernelfleet/store';
import { createMetricsRegistry, ExecutionMetrics, lifecycleLine, MetricsServer } from '@kernelfleet/telemetry';
import { ExecutionRunner } from '../executions/execution-runner.service';
import { QueueSweeper } from '../executions/queue-sweeper';
import { WorkerReaper } from '../fleet/worker-reaper';
import { SessionKernels } from '../kernels/session-kernels';
import { WORKER_CONFIG } from '../tokens';

/**
 * The worker's metrics (docs/operations.md) and the small HTTP server that serves them on
 * METRICS_PORT. Gauges and the reaper's and culler's counters are read from their owners at
 * scrape time; execution counts and durations are taken where this worker writes a terminal
 * state (SessionLanes.onFinished).
 */
@Injectable()
export class WorkerMetrics implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerMetrics.name);
  readonly registry = createMetricsRegistry();
  readonly executions = new ExecutionMetrics(this.registry);
  private readonly server = new MetricsServer(this.registry);

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    store: FleetStore,
    kernels: SessionKernels,
    runner: ExecutionRunner,
    reaper: WorkerReaper,
    sweeper: QueueSweeper,
  ) {
    const registers = [this.registry];
    store.lanes.onFinished((ref, execution) => this.executions.finished(ref.tenant, execution));
    new Gauge({
      name: 'kernelfleet_kernels',
      help: 'Kernels of this worker by state: session (held by a session, alive), pool (started, waiting for a session), starting',
      labelNames: ['state'],
      registers,
      collect() {
        this.set({ state: 'session' }, kernels.liveSessionKernels);
        this.set({ state: 'pool' }, kernels.pooled);
        this.set({ state: 'starting' }, kernels.starting);
      },
    });
    new Gauge({
      name: 'kernelfleet_sessions_held',
      help: 'Sessions homed on this worker (each holds a kernel slot, up to MAX_KERNELS)',
      registers,
      collect() {
        this.set(kernels.size);
      },
    });
    new Gauge({
      name: 'kernelfleet_session_kernels_max',
      help: 'MAX_KERNELS: sessions this worker holds at most before it stops taking new ones',
      registers,
      collect() {
        this.set(config.kernels.maxKernels);
      },
    });
    new Gauge({
      name: 'kernelfleet_executions_running',
      help: 'Executions running on this worker',
      registers,
      collect() {
        this.set(runner.runningCount);
      },
    });
    const total = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    total('kernelfleet_kernels_culled_total', 'Idle session kernels this worker shut down (KERNEL_IDLE_MS)', () => kernels.culled);
    total(
      'kernelfleet_kernels_evicted_total',
      'Idle session kernels this worker shut down to make room for a new session at a full fleet (KERNEL_EVICT_MIN_IDLE_MS)',
      () => kernels.evicted,
    );
    total(
      'kernelfleet_executions_no_capacity_total',
      'Executions this worker ended timed_out in the queue because the fleet had no kernel for them (every slot taken, nothing idle long enough to evict)',
      () => sweeper.noCapacityTimeouts,
    );
    new Counter({
      name: 'kernelfleet_kernels_disposed_total',
      help:
        'Session kernels this worker shut down because their session was no longer homed here (disposed, or taken by a reaper), ' +
        'by who found it: the control message, the periodic reconcile with Redis (KERNEL_RECONCILE_MS), the next acquire, ' +
        'or the execution whose kernel was starting when the disposal came (start)',
      labelNames: ['found_by'],
      registers,
      collect() {
        this.reset();
        for (const [foundBy, count] of Object.entries(kernels.disposed)) this.inc({ found_by: foundBy }, count);
      },
    });
    total('kernelfleet_workers_reaped_total', 'Lost workers (lease expired) whose work this worker\'s reaper handed back', () => reaper.totals.workersReaped);
    total('kernelfleet_sessions_rehomed_total', 'Sessions of lost workers this worker\'s reaper released for re-homing', () => reaper.totals.sessionsRehomed);
    total(
      'kernelfleet_executions_recovered_total',
      'Executions running on lost workers that this worker\'s reaper ended (outcome_unknown) or re-queued',
      () => reaper.totals.executionsRecovered,
    );
  }

  /** Listens before the worker says it is ready; a port that cannot be bound stops the start. */
  async onModuleInit(): Promise<void> {
    const { port, host } = this.config.metrics;
    if (port === 0) return;
    const bound = await this.server.listen(port, host);
    this.logger.log(lifecycleLine(`metrics on http://${host}:${bound}/metrics`, { metricsPort: bound }));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.server.close();
  }
}
