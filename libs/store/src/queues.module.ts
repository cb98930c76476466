import { BullModule, BullRegistrar, Processor, WorkerHost, getQueueToken } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, Module, type DynamicModule, type Provider } from '@nestjs/common';
import type { Job, Queue } from 'bullmq';
import { SHARED_QUEUE, type RunExecutionJob } from '@kernelfleet/contracts';
import { workerQueueName } from './dispatcher';
import { FleetStore } from './fleet-store';
import { JobConsumer } from './job-consumer';

export interface WorkerQueuesOptions {
  workerId: string;
  /** Jobs run at once per queue. */
  concurrency: number;
  /** BullMQ's job lock and stalled-job check follow the worker lease, not their 30 s default. */
  leaseMs: number;
}

/**
 * BullMQ under Nest (@nestjs/bullmq), for the queues whose names are known when the app is built:
 * Nest creates them on the FleetStore's queue connection, each with its hash-tagged prefix, and
 * closes them (and the processors' workers) at shutdown. The FleetStore's dispatcher uses them.
 * The queues of other workers, named at run time, stay the dispatcher's own (docs/architecture.md,
 * *BullMQ and Nest*). Needs a global provider of FleetStore.
 */
@Module({})
export class QueuesModule {
  /** The api: the shared queue. */
  static forApi(): DynamicModule {
    return queuesModule([SHARED_QUEUE], []);
  }

  /**
   * A worker: the shared queue with its processor, whose BullMQ worker is created when the worker
   * is ready to run jobs (`JobConsumer.start`), not when the module starts; and the consumer of
   * the worker's inbox (WorkerInboxes), which is no BullMQ queue.
   */
  static forWorker(options: WorkerQueuesOptions): DynamicModule {
    const workerOptions = { concurrency: options.concurrency, lockDuration: options.leaseMs, stalledInterval: options.leaseMs, autorun: false };
    const logger = new Logger(JobConsumer.name);
    const consumer: Provider = {
      provide: JobConsumer,
      inject: [FleetStore, BullRegistrar],
      useFactory: (store: FleetStore, registrar: BullRegistrar) => {
        const inbox = store.inboxConsumer(options.workerId, options.concurrency, (error) => logger.warn(`inbox: ${String(error)}`));
        return new JobConsumer(workerQueueName(options.workerId), inbox, () => registrar.register());
      },
    };
    const module = queuesModule([SHARED_QUEUE], [consumer, processorOf(SHARED_QUEUE, workerOptions)]);
    return { ...module, exports: [JobConsumer] };
  }
}

function queuesModule(names: string[], providers: Provider[]): DynamicModule {
  return {
    module: QueuesModule,
    imports: [
      BullModule.forRootAsync({
        inject: [FleetStore],
        useFactory: (store: FleetStore) => ({ connection: store.queueConnection }),
        extraOptions: { manualRegistration: true },
      }),
      ...names.map((name) =>
        BullModule.registerQueueAsync({ name, inject: [FleetStore], useFactory: (store: FleetStore) => ({ prefix: store.keys.bullPrefix(name) }) }),
      ),
    ],
    providers: [...providers, ...names.map(queueHandedToDispatcher)],
  };
}

/** The dispatcher adds jobs through the queue Nest made (token: the queue's name, handed over). */
function queueHandedToDispatcher(name: string): Provider {
  return {
    provide: `kernelfleet:dispatcher:${name}`,
    inject: [FleetStore, getQueueToken(name)],
    useFactory: (store: FleetStore, queue: Queue) => store.dispatcher.adopt(queue),
  };
}

/** A processor class for one queue: hands the queue's jobs to the JobConsumer. */
function processorOf(queueName: string, workerOptions: object): Provider {
  @Processor(queueName, workerOptions)
  @Injectable()
  class QueueProcessor extends WorkerHost {
    constructor(@Inject(JobConsumer) private readonly consumer: JobConsumer) {
      super();
      consumer.serve(queueName, this);
    }

    process(job: Job<RunExecutionJob>, token?: string): Promise<void> {
      return this.consumer.process(queueName, job, token);
    }
  }
  Object.defineProperty(QueueProcessor, 'name', { value: `QueueProcessor(${queueName})` });
  return QueueProcessor;
}
