import Redis, { Cluster } from 'ioredis';
import { parseRedisTarget } from '@kernelfleet/config';

/**
 * A plain client for tests that look into Redis directly, on whatever `REDIS_URL` names: one
 * Redis, or a Redis Cluster (`redis+cluster://…`, see TestRedisCluster).
 */
export function connectTestRedis(url = process.env.KF_TEST_REDIS_URL): Redis | Cluster {
  if (!url) throw new Error('KF_TEST_REDIS_URL is not set (test/support/global-setup.ts starts Redis)');
  const target = parseRedisTarget(url);
  const client =
    target.kind === 'single'
      ? new Redis(url)
      : new Cluster(target.nodes, {
          scaleReads: 'master',
          // The credentials of the URL, for every node (as libs/store/src/redis-connection.ts does).
          redisOptions: {
            ...(target.username ? { username: target.username } : {}),
            ...(target.password ? { password: target.password } : {}),
            ...(target.tls ? { tls: {} } : {}),
          },
        });
  client.on('error', () => undefined);
  return client;
}

/** Every key matching `pattern`; on a cluster, from every master (KEYS answers one node's keys). */
export async function keysMatching(client: Redis | Cluster, pattern: string): Promise<string[]> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const found = await Promise.all(nodes.map((node) => node.keys(pattern)));
  return found.flat().sort();
}
