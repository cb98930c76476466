import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import { FleetStore, JobConsumer, redisServesWithoutPassword, type WorkerControlMessage } from '@kernelfleet/store';
import { lifecycleLine } from '@kernelfleet/telemetry';
import { ExecutionRunner } from './executions/execution-runner.service';
import { QueueSweeper } from './executions/queue-sweeper';
import { WorkerReaper } from './fleet/worker-reaper';
import { JupyterService } from './jupyter/jupyter.service';
import { SessionKernels } from './kernels/session-kernels';
import { ToolBridge } from './tools/tool-bridge';
import { WORKER_CONFIG } from './tokens';

/**
 * Boot: Jupyter server, control channel, recovery of what a previous process with this worker id
 * left behind, lease, then queues (a worker takes no job before it can run it).
 * Drain (SIGTERM): stop being a home for sessions, stop taking jobs, let running executions end
 * (each is bounded by its deadline), hand the sessions back so their queued executions run
 * elsewhere, shut the kernels down, leave the registry.
 */
@Injectable()
export class WorkerLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerLifecycle.name);
  private unlisten?: () => void;
  private draining = false;
  private drained?: Promise<void>;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly store: FleetStore,
    private readonly consumer: JobConsumer,
    private readonly jupyter: JupyterService,
    private readonly kernels: SessionKernels,
    private readonly runner: ExecutionRunner,
    private readonly sweeper: QueueSweeper,
    private readonly reaper: WorkerReaper,
    private readonly tools: ToolBridge,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const { workerId, concurrency } = this.config;
    await this.jupyter.start();
    await this.refuseOpenRedis();
    // Before the pool starts kernels in staging folders of this worker's.
    const orphans = await this.kernels.folders.removeOrphans();
    if (orphans) this.logger.warn(`deleted the session folders of ${orphans} tenant(s) a previous process of this worker left`);
    this.kernels.start();
    this.unlisten = await this.store.live.listen(this.store.keys.workerControl(workerId), (message) =>
      this.onControl(JSON.parse(message) as WorkerControlMessage),
    );
    const leftover = await this.store.failover.handBack(workerId, { lost: true });
    if (leftover.sessions || leftover.recovered) {
      this.logger.warn(`recovered after a restart: ${leftover.sessions} session(s), ${leftover.recovered} running execution(s)`);
    }
    await this.beat();
    this.consumer.start(
      (job, queue) => this.runner.handle(job, queue),
      async () => {
        const offered = await this.store.failover.reofferHeads(workerId);
        if (offered) this.logger.warn(`placed ${offered} queued head(s) of this worker's sessions in its inbox again after a reconnect`);
      },
    );
    this.sweeper.start();
    this.reaper.start();
    this.logger.log(lifecycleLine(`worker ${workerId} ready (concurrency ${concurrency})`, { concurrency }));
  }

  /**
   * A Redis that serves clients without a password, where kernels can reach it, hands every
   * tenant's data to any tenant's code: the worker does not start on it, unless told that this
   * is a single-tenant development setup.
   */
  private async refuseOpenRedis(): Promise<void> {
    if (!this.jupyter.kernelsReachRedis || !(await redisServesWithoutPassword(this.config.store.redisUrl))) return;
    const problem = "kernels can reach this worker's Redis, and it serves clients without a password";
    if (!this.config.sandbox.singleTenantDev) {
      throw new Error(`${problem}: give Redis a password (requirepass, or an ACL user) and put it in REDIS_URL; SINGLE_TENANT_DEV=true starts anyway, for a single-tenant development setup only`);
    }
    this.logger.warn(lifecycleLine(`SINGLE_TENANT_DEV: ${problem}; any code run here can read and change everything in it`));
  }

  /** Idempotent; the process may exit 0 once it resolves. */
  drain(): Promise<void> {
    this.drained ??= this.drainOnce();
    return this.drained;
  }

  /** Runs before any provider's shutdown hook, so the Jupyter server outlives the drain. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }

  private async drainOnce(): Promise<void> {
    const { workerId } = this.config;
    this.draining = true;
    this.logger.log(lifecycleLine(`draining: ${this.runner.runningCount} running execution(s) finish first`, { running: this.runner.runningCount }));
    await this.beat().catch(() => undefined);
    await this.consumer.close();
    const { sessions } = await this.store.failover.handBack(workerId, { lost: false, state: 'lost' });
    this.unlisten?.();
    await this.kernels.disposeAll();
    await this.store.registry.stop(workerId);
    this.logger.log(lifecycleLine(`drained: ${sessions} session(s) handed back`, { sessions }));
  }

  private beat(): Promise<void> {
    return this.store.registry.startHeartbeat(this.config.workerId, () => ({
      bootId: this.config.bootId,
      maxKernels: this.config.kernels.maxKernels,
      ...this.kernels.leaseFields(),
      running: this.runner.runningCount,
      concurrency: this.config.concurrency,
      draining: this.draining,
    }));
  }

  private onControl(message: WorkerControlMessage): void {
    if (message.op === 'cancel') this.runner.cancel(message.executionId);
    else if (message.op === 'tool-answer') this.tools.answered(message.executionId, message.callId, message.answer);
    else {
      // The session was disposed: Redis says so already; this only checks it now rather than at
      // the next reconcile.
      const ref = { tenant: message.tenant, sessionId: message.sessionId };
      void this.kernels.reconcile(ref, 'message').catch((e: unknown) => this.logger.warn(`disposing the kernel of ${ref.tenant}/${ref.sessionId} failed: ${e}`));
    }
  }
}
