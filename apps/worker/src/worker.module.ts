import { Global, Module } from '@nestjs/common';
import { loadWorkerConfig, type WorkerConfig } from '@kernelfleet/config';
import { FleetStore } from '@kernelfleet/store';
import { ExecutionRunner } from './executions/execution-runner.service';
import { QueueSweeper } from './executions/queue-sweeper';
import { WorkerReaper } from './fleet/worker-reaper';
import { JupyterService } from './jupyter/jupyter.service';
import { SessionKernels } from './kernels/session-kernels';
import { WorkerMetrics } from './metrics/worker-metrics.service';
import { FilesModule } from './files/files.module';
import { ToolsModule } from './tools/tools.module';
import { WORKER_CONFIG } from './tokens';
import { WorkerLifecycle } from './worker-lifecycle.service';

/** What every feature module of the worker uses: its configuration and the one door to Redis. */
@Global()
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
  ],
  exports: [WORKER_CONFIG, FleetStore],
})
export class WorkerCoreModule {}

@Module({
  imports: [WorkerCoreModule, ToolsModule, FilesModule],
  providers: [JupyterService, SessionKernels, ExecutionRunner, QueueSweeper, WorkerReaper, WorkerLifecycle, WorkerMetrics],
})
export class WorkerModule {}
