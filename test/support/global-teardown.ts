import type { ContainerRedis } from './redis-container';
import type { TestRedis, TestRedisCluster } from './redis-server';

export default async function globalTeardown(): Promise<void> {
  const state = globalThis as { __kfRedis?: TestRedis | ContainerRedis; __kfRedisCluster?: TestRedisCluster };
  const redis = state.__kfRedis ?? state.__kfRedisCluster;
  if (redis) {
    await redis.stop();
    delete state.__kfRedis;
    delete state.__kfRedisCluster;
    delete process.env.KF_TEST_REDIS_URL;
  }
}
