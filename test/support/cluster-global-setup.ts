import { buildApps } from './global-setup';
import { TestRedisCluster } from './redis-server';

/**
 * The `e2e-cluster` project (jest.config.js): a three-master Redis Cluster for the run, named
 * by KF_TEST_REDIS_CLUSTER_URL (KF_TEST_REDIS_URL belongs to the single Redis the other
 * projects share); use-redis-cluster.ts points each of the project's test files at it.
 */
export default async function clusterGlobalSetup(): Promise<void> {
  if (process.env.KF_TEST_REDIS_CLUSTER_URL) return;
  buildApps();
  const cluster = await TestRedisCluster.start();
  (globalThis as { __kfClusterProject?: TestRedisCluster }).__kfClusterProject = cluster;
  process.env.KF_TEST_REDIS_CLUSTER_URL = cluster.url;
}
