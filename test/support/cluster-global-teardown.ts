import type { TestRedisCluster } from './redis-server';

export default async function clusterGlobalTeardown(): Promise<void> {
  const state = globalThis as { __kfClusterProject?: TestRedisCluster };
  if (state.__kfClusterProject) {
    await state.__kfClusterProject.stop();
    delete state.__kfClusterProject;
    delete process.env.KF_TEST_REDIS_CLUSTER_URL;
  }
}
