import 'reflect-metadata';
import { Global, Module, type INestApplicationContext, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SHARED_QUEUE, type RunExecutionJob } from '@kernelfleet/contracts';
import { FleetStore, JobConsumer, QueuesModule, workerQueueName } from '@kernelfleet/store';
import { connectTestRedis } from '../support/redis-client';
import { acceptRequest, connectStore, testPrefix } from '../support/store-fixtures';

/**
 * A worker's queues under Nest (QueuesModule.forWorker) against a real Redis: no job is taken
 * before the consumer starts, heads of its inbox and jobs of the shared queue reach the handler, the shared queue pauses and
 * resumes (also while a long job of it still runs), and closing the app leaves no connection open.
 */
describe('QueuesModule: a worker consuming its queues', () => {
  const workerId = 'nest-w1';
  const prefix = testPrefix('queues');
  let app: INestApplicationContext;
  let store: FleetStore;
  let consumer: JobConsumer;
  const handled: { executionId: string; queue: string }[] = [];
  /** Executions whose handler waits until released. */
  const holding = new Set<string>();
  const releases = new Map<string, () => void>();
  const releaseAll = () => releases.forEach((release) => release());
  const redis = connectTestRedis();

  /** Connections named after this test's key prefix: the store's, and BullMQ's duplicates. */
  const connectionsOpen = async () => {
    const list = (await redis.call('CLIENT', 'LIST')) as string;
    return list.split('\n').filter((line) => line.includes(`name=${prefix}`)).length;
  };

  beforeAll(async () => {
    // As the apps' core modules do: the store, closed at shutdown.
    @Global()
    @Module({ providers: [{ provide: FleetStore, useFactory: () => connectStore(prefix, `${prefix}-worker`) }], exports: [FleetStore] })
    class StoreModule implements OnApplicationShutdown {
      constructor(private readonly store: FleetStore) {}
      onApplicationShutdown(): Promise<void> {
        return this.store.close();
      }
    }
    app = await NestFactory.createApplicationContext(
      { module: class WorkerTestModule {}, imports: [StoreModule, QueuesModule.forWorker({ workerId, concurrency: 2, leaseMs: 10_000 })] },
      { logger: false },
    );
    store = app.get(FleetStore);
    consumer = app.get(JobConsumer);
  });

  afterAll(async () => {
    releaseAll();
    await app?.close();
    await redis.quit();
  });

  async function dispatch(sessionId: string, queue: string, hold = false): Promise<string> {
    const { ref } = await store.executions.accept(acceptRequest(sessionId));
    if (hold) holding.add(ref.executionId);
    if (queue === SHARED_QUEUE) await store.dispatcher.enqueue(queue, ref);
    else await store.dispatcher.toWorker(workerId, ref);
    return ref.executionId;
  }

  const handledIds = () => handled.map((h) => h.executionId);
  const until = async (what: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('takes no job before start, then runs the heads of its inbox and the jobs of the shared queue', async () => {
    const own = await dispatch('own-1', workerQueueName(workerId));
    await new Promise((r) => setTimeout(r, 300));
    expect(handled).toEqual([]);
    expect(await store.dispatcher.inboxes.depth(workerId)).toBe(1);

    consumer.start(
      async (job: RunExecutionJob, queue: string) => {
        handled.push({ executionId: job.executionId, queue });
        if (holding.has(job.executionId)) await new Promise<void>((resolve) => releases.set(job.executionId, resolve));
      },
      async () => undefined,
    );
    const shared = await dispatch('shared-1', SHARED_QUEUE);
    await until(() => handled.length === 2);
    expect(await store.dispatcher.inboxes.depth(workerId)).toBe(0);
    expect(handled).toEqual(
      expect.arrayContaining([
        { executionId: own, queue: workerQueueName(workerId) },
        { executionId: shared, queue: SHARED_QUEUE },
      ]),
    );
  });

  it('leaves shared jobs waiting while paused, and takes them when resumed, even with a long shared job still running', async () => {
    // A long job of the shared queue is running when the queue pauses.
    const long = await dispatch('long', SHARED_QUEUE, true);
    await until(() => releases.has(long));
    consumer.setSharedPaused(true);

    const waiting = await dispatch('while-paused', SHARED_QUEUE);
    const ownWhilePaused = await dispatch('own-2', workerQueueName(workerId));
    await until(() => handledIds().includes(ownWhilePaused));
    await new Promise((r) => setTimeout(r, 500));
    expect(handledIds()).not.toContain(waiting);

    // Resumed while the long job still runs: the new shared job is taken now, not after it.
    consumer.setSharedPaused(false);
    await until(() => handledIds().includes(waiting));
    expect(releases.has(long)).toBe(true);
    releaseAll();
  });

  it('closes every connection it opened when the app closes', async () => {
    expect(await connectionsOpen()).toBeGreaterThan(0);
    releaseAll();
    await app.close();
    const end = Date.now() + 5_000;
    while ((await connectionsOpen()) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(await connectionsOpen()).toBe(0);
  });
});
