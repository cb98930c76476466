import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore, type WorkerControlMessage } from '@kernelfleet/store';
import { ExecutionRunner } from './executions/execution-runner.service';
import { QueueSweeper } from './executions/queue-sweeper';
import { JupyterService } from './jupyter/jupyter.service';
import { SessionKernels } from './kernels/session-kernels';
import { WORKER_CONFIG } from './tokens';

/**
 * Boot order: Jupyter server, control channel, lease, then queues (a worker takes no job before
 * it can run it). Shutdown in reverse: stop taking jobs, let running ones end, drop kernels.
 */
@Injectable()
export class WorkerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerLifecycle.name);
  private unlisten?: () => void;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly store: FleetStore,
    private readonly jupyter: JupyterService,
    private readonly kernels: SessionKernels,
    private readonly runner: ExecutionRunner,
    private readonly sweeper: QueueSweeper,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const { workerId, concurrency } = this.config;
    await this.jupyter.start();
    this.unlisten = await this.store.live.listen(this.store.keys.workerControl(workerId), (message) =>
      this.onControl(JSON.parse(message) as WorkerControlMessage),
    );
    await this.store.registry.startHeartbeat(workerId, () => ({
      maxKernels: this.config.kernels.maxKernels,
      kernels: this.kernels.size,
      running: this.runner.runningCount,
      concurrency,
      draining: false,
    }));
    this.store.consumer.start(workerId, concurrency, (job, queue) => this.runner.handle(job, queue));
    this.sweeper.start();
    this.logger.log(`worker ${workerId} ready (concurrency ${concurrency})`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.consumer.close();
    this.unlisten?.();
    await this.kernels.disposeAll();
    await this.store.registry.stop(this.config.workerId);
    await this.store.close();
  }

  private onControl(message: WorkerControlMessage): void {
    if (message.op === 'cancel') this.runner.cancel(message.executionId);
    else void this.runner.dispose({ tenant: message.tenant, sessionId: message.sessionId });
  }
}
