/**
 * Where Redis is, from `REDIS_URL`:
 * - `redis://[user:password@]host[:port][/db]` (or `rediss://` with TLS): one Redis;
 * - `redis+cluster://[user:password@]host:port[,host:port…]` (or `rediss+cluster://`): a Redis
 *   Cluster, found through any of the listed seed nodes (the client learns the others).
 *
 * One variable either way, so every tool that reads `REDIS_URL` (the apps, the CLIs, `npm
 * start`, the tests) follows the same setting, and the kernels' environment allowlist keeps it
 * away from user code as before.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'cluster';
      nodes: { host: string; port: number }[];
      username?: string;
      password?: string;
      tls: boolean;
    };

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\/(.*)$/;
const SINGLE_SCHEME = /^rediss?:\/\/[^\s]+$/;
/** `host:port` or `[ipv6]:port`. */
const NODE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/;

/** Parses `REDIS_URL`; throws an Error whose message says what is wrong (for the config check). */
export function parseRedisTarget(url: string): RedisTarget {
  const cluster = CLUSTER_SCHEME.exec(url);
  if (!cluster) {
    if (!SINGLE_SCHEME.test(url)) throw new Error('must be a redis:// or rediss:// URL, or redis+cluster://host:port,host:port');
    return { kind: 'single', url };
  }
  const [, scheme, rest] = cluster;
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hosts = (at >= 0 ? rest.slice(at + 1) : rest).replace(/\/$/, '');
  if (!hosts) throw new Error('a redis+cluster:// URL needs at least one host:port');
  const nodes = hosts.split(',').map((node) => {
    const m = NODE.exec(node.trim());
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65_535) throw new Error(`"${node}" is not host:port (redis+cluster://host:port,host:port)`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port };
  });
  const colon = auth.indexOf(':');
  const username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth);
  const password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : '';
  return {
    kind: 'cluster',
    nodes,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    tls: scheme === 'rediss',
  };
}

/** `REDIS_URL` with its credentials masked, for messages. */
export function redisUrlForDisplay(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
