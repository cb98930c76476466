import { Module, type DynamicModule } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore, QueuesModule } from '@kernelfleet/store';
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
@Module({})
export class WorkerCoreModule {}

function workerCore(config: WorkerConfig): DynamicModule {
  const store = { ...config.store, maxReplayEvents: config.output.replayMaxEvents, clientName: `worker-${config.workerId}` };
  return {
    module: WorkerCoreModule,
    global: true,
    providers: [
      { provide: WORKER_CONFIG, useValue: config },
      { provide: FleetStore, useFactory: () => FleetStore.connect(store) },
    ],
    exports: [WORKER_CONFIG, FleetStore],
  };
}

/**
 * The worker, built for its configuration: the name of its own queue (from WORKER_ID) is known
 * before the app is created, so its processor is registered like the shared queue's.
 */
@Module({})
export class WorkerModule {
  static forConfig(config: WorkerConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        workerCore(config),
        QueuesModule.forWorker({ workerId: config.workerId, concurrency: config.concurrency, leaseMs: config.store.workerLeaseMs }),
        ToolsModule,
        FilesModule,
      ],
      providers: [JupyterService, SessionKernels, ExecutionRunner, QueueSweeper, WorkerReaper, WorkerLifecycle, WorkerMetrics],
    };
  }
}
