import { Module } from '@nestjs/common';
import { loadWorkerConfig, type WorkerConfig } from '@kernelfleet/config';
import { FleetStore } from '@kernelfleet/store';
import { ExecutionRunner } from './executions/execution-runner.service';
import { QueueSweeper } from './executions/queue-sweeper';
import { WorkerReaper } from './fleet/worker-reaper';
import { JupyterService } from './jupyter/jupyter.service';
import { SessionKernels } from './kernels/session-kernels';
import { WorkerMetrics } from './metrics/worker-metrics.service';
import { WORKER_CONFIG } from './tokens';
import { WorkerLifecycle } from './worker-lifecycle.service';

@Module({
  providers: [
    { provide: WORKER_CONFIG, useFactory: () => loadWorkerConfig() },
    {
      provide: FleetStore,
      inject: [WORKER_CONFIG],
      useFactory: (config: WorkerConfig) =>
        FleetStore.connect({
          ...config.store,
          maxReplayEvents: config.output.replayMaxEvents,
          clientName: `worker-${config.workerId}`,
        }),
    },
    JupyterService,
    SessionKernels,
    ExecutionRunner,
    QueueSweeper,
    WorkerReaper,
    WorkerLifecycle,
    WorkerMetrics,
  ],
})
export class WorkerModule {}
