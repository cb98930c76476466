import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { dockerEngine } from './docker-images';
import { ContainerRedis } from './redis-container';
import { TestRedis, TestRedisCluster } from './redis-server';

/**
 * Once per `npm test`: a private Redis on a free port (KF_TEST_REDIS_URL) and a compiled dist/
 * for the tests that start the api and workers as real processes. The Redis is a container
 * (@testcontainers/redis) where a Docker engine answers, else a redis-server process. With KF_TEST_REDIS_CLUSTER=1
 * the Redis is a three-master Redis Cluster instead (KF_TEST_REDIS_URL=redis+cluster://…), so
 * `KF_TEST_REDIS_CLUSTER=1 npx jest --selectProjects e2e` runs the whole suite on a cluster.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.KF_TEST_REDIS_URL) return;
  buildApps();
  if (process.env.KF_TEST_REDIS_CLUSTER === '1') {
    const cluster = await TestRedisCluster.start();
    (globalThis as { __kfRedisCluster?: TestRedisCluster }).__kfRedisCluster = cluster;
    process.env.KF_TEST_REDIS_URL = cluster.url;
    return;
  }
  const redis = dockerEngine() ? await ContainerRedis.start() : await TestRedis.start();
  (globalThis as { __kfRedis?: TestRedis | ContainerRedis }).__kfRedis = redis;
  process.env.KF_TEST_REDIS_URL = redis.url;
}

/** dist/ and the client package once per run (the e2e projects share them). */
export function buildApps(): void {
  const state = globalThis as { __kfBuilt?: boolean };
  if (state.__kfBuilt) return;
  const root = join(__dirname, '..', '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  // The client package (libs/client/dist), which the package tests load as a user would.
  execFileSync(process.execPath, [join(root, 'scripts', 'build-client.js')], { cwd: root, stdio: 'inherit' });
  state.__kfBuilt = true;
}
