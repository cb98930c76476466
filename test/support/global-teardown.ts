import type { TestRedis } from './redis-server';

export default async function globalTeardown(): Promise<void> {
  const redis = (globalThis as { __kfRedis?: TestRedis }).__kfRedis;
  if (redis) {
    await redis.stop();
    delete (globalThis as { __kfRedis?: TestRedis }).__kfRedis;
    delete process.env.KF_TEST_REDIS_URL;
  }
}
