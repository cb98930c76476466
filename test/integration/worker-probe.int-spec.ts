/**
 * scripts/worker-probe.js, the worker's readiness check in docker-compose.yml and k8s/: ready
 * exactly while the worker holds a lease written by the real WorkerRegistry and is not
 * draining; the WORKER_ID-less form finds `<hostname>-<pid>`; a Redis password is used.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { FleetStore } from '@kernelfleet/store';
import { connectStore, testPrefix } from '../support/store-fixtures';
import { TestRedis } from '../support/redis-server';

const PROBE = join(__dirname, '..', '..', 'scripts', 'worker-probe.js');

function probe(env: Record<string, string>): { ok: boolean; message: string } {
  const run = spawnSync(process.execPath, [PROBE], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 10_000 });
  return { ok: run.status === 0, message: run.stderr.trim() };
}

const lease = (draining: boolean) => () => ({ bootId: 'b', maxKernels: 4, kernels: 0, running: 0, concurrency: 4, draining });

describe('scripts/worker-probe.js', () => {
  const prefix = testPrefix('probe');
  let store: FleetStore;
  const env = () => ({ REDIS_URL: process.env.KF_TEST_REDIS_URL as string, KEY_PREFIX: prefix });

  beforeAll(() => {
    store = connectStore(prefix, 'probe');
  });
  afterAll(async () => {
    const keys = await store.redis.keys(`${prefix}:*`);
    if (keys.length) await store.redis.del(...keys);
    await store.close();
  });

  it('is ready while the worker holds a lease, and not once it has left', async () => {
    expect(probe({ ...env(), WORKER_ID: 'w-probe-1' })).toEqual({ ok: false, message: 'not ready: worker w-probe-1 holds no lease' });
    await store.registry.startHeartbeat('w-probe-1', lease(false));
    expect(probe({ ...env(), WORKER_ID: 'w-probe-1' })).toEqual({ ok: true, message: '' });
    await store.registry.stop('w-probe-1');
    expect(probe({ ...env(), WORKER_ID: 'w-probe-1' }).ok).toBe(false);
  });

  it('is not ready while the worker drains', async () => {
    await store.registry.startHeartbeat('w-probe-2', lease(true));
    expect(probe({ ...env(), WORKER_ID: 'w-probe-2' })).toEqual({ ok: false, message: 'not ready: worker w-probe-2 is draining' });
    await store.registry.stop('w-probe-2');
  });

  it('without WORKER_ID finds the worker named <hostname>-<pid> (compose replicas)', async () => {
    expect(probe(env()).message).toBe(`not ready: no worker named ${hostname()}-<pid> is registered`);
    await store.registry.startHeartbeat('someone-else-7', lease(false));
    expect(probe(env()).ok).toBe(false);
    await store.registry.startHeartbeat(`${hostname()}-4242`, lease(false));
    expect(probe(env())).toEqual({ ok: true, message: '' });
    await store.registry.stop(`${hostname()}-4242`);
    await store.registry.stop('someone-else-7');
  });

  it('says why when Redis does not answer', () => {
    const result = probe({ REDIS_URL: 'redis://127.0.0.1:1', WORKER_ID: 'w' });
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^not ready: .*ECONNREFUSED/);
  });

  describe('with a Redis password', () => {
    // TestRedis requires a random password, given to redis-server on stdin (not its command line).
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await TestRedis.start();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('authenticates with the URL password, and reports a wrong one', () => {
      const port = redis.port;
      expect(redis.url).toBe(`redis://:${redis.password}@127.0.0.1:${port}`);
      expect(probe({ REDIS_URL: redis.url, WORKER_ID: 'x' }).message).toBe('not ready: worker x holds no lease');
      expect(probe({ REDIS_URL: `redis://:wrong@127.0.0.1:${port}`, WORKER_ID: 'x' }).message).toMatch(/^not ready: Redis answered WRONGPASS/);
      expect(probe({ REDIS_URL: `redis://127.0.0.1:${port}`, WORKER_ID: 'x' }).message).toMatch(/^not ready: Redis answered NOAUTH/);
    });
  });
});
