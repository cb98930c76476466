import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TestRedis } from './redis-server';

/**
 * Once per `npm test`: a private Redis on a free port (KF_TEST_REDIS_URL) and a compiled dist/
 * for the tests that start the api and workers as real processes.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.KF_TEST_REDIS_URL) return;
  const root = join(__dirname, '..', '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  const redis = await TestRedis.start();
  (globalThis as { __kfRedis?: TestRedis }).__kfRedis = redis;
  process.env.KF_TEST_REDIS_URL = redis.url;
}
