import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisTarget } from '@kernelfleet/config';

/**
 * A connection to one Redis or to a Redis Cluster (`REDIS_URL=redis+cluster://…`). The store
 * uses only what both have; everything it sends in one script, MULTI or pipeline stays in one
 * hash slot (docs/architecture.md, *Redis Cluster*).
 */
export type RedisClient = Redis | Cluster;

/**
 * Connections for the uses we have:
 * - `command`: plain commands and our Lua scripts;
 * - `producer`: what BullMQ queues and workers send commands through (each worker blocks on a
 *   duplicate of it; without failFast no per-request retry limit, as BullMQ requires);
 * - `subscriber`: pub/sub only (re-subscribes by itself after a reconnect).
 *
 * `failFast` (the api) makes `command` and `producer` refuse a command at once while Redis is
 * not connected, and drop a connection that stops answering, so an HTTP request gets a 503
 * instead of hanging. Without it (the worker) commands wait in order until Redis is back: a
 * terminal write or an output event made during an outage is sent after it, not lost.
 */
export type ConnectionRole = 'command' | 'producer' | 'subscriber';

/**
 * A fail-fast connection that waited this long for a reply gets dropped (and its commands
 * fail): the bound on how long an api request can hang on a Redis that stopped answering
 * without closing the connection (a network partition rather than a crash).
 *
 * ioredis starts the wait when it writes a command and checks it on a timer, which Node runs
 * before it reads the socket: an api whose own event loop was starved (its cores busy with
 * kernel starts) for longer than this drops a connection whose reply had already arrived, and
 * answers 503. A 503 in a CI run of test/e2e/ordering.e2e-spec.ts (400 submissions at once
 * beside 20 kernel starts on 2 cores), with Redis healthy, is read as this at 2 s; 4 s keeps a
 * partition's bound under the 5 s the outage test allows.
 */
export const FAIL_FAST_SOCKET_TIMEOUT_MS = 4_000;

/** Reconnect backoff: 100 ms, 200 ms, … at most 1 s, so a returning Redis is noticed quickly. */
const retryStrategy = (attempt: number) => Math.min(attempt * 100, 1_000);

export function createRedis(url: string, role: ConnectionRole, name: string, failFast = false): RedisClient {
  const fails = failFast && (role === 'command' || role === 'producer');
  // What each connection to a Redis server gets, alone or as one node of a cluster.
  const perServer: RedisOptions = {
    connectionName: name,
    enableReadyCheck: true,
    ...(fails ? { maxRetriesPerRequest: 0, socketTimeout: FAIL_FAST_SOCKET_TIMEOUT_MS } : { maxRetriesPerRequest: null }),
  };
  const target = parseRedisTarget(url);
  const redis: RedisClient =
    target.kind === 'single'
      ? new Redis(url, { ...perServer, lazyConnect: false, retryStrategy, ...(fails ? { enableOfflineQueue: false } : {}) })
      : new Cluster(target.nodes, {
          lazyConnect: false,
          enableReadyCheck: true,
          // The cluster reconnects as a whole, with the same backoff as a single Redis.
          clusterRetryStrategy: retryStrategy,
          // Commands go to masters: a replica may lag behind a script's writes.
          scaleReads: 'master',
          ...(fails ? { enableOfflineQueue: false } : {}),
          redisOptions: {
            ...perServer,
            ...(target.username ? { username: target.username } : {}),
            ...(target.password ? { password: target.password } : {}),
            ...(target.tls ? { tls: {} } : {}),
          },
          // With TLS, connect to nodes by the names given (certificates name hosts, not addresses).
          ...(target.tls ? { dnsLookup: (address: string, done: (err: null, address: string) => void) => done(null, address) } : {}),
        } satisfies ClusterOptions);
  // Connection errors are expected during an outage and surface on the commands themselves.
  redis.on('error', () => undefined);
  return redis;
}

/** Thrown instead of sending a command when Redis is not connected (fail-fast connections). */
export class StoreUnavailableError extends Error {
  constructor(message = 'Redis is not connected') {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Whether an error means "Redis is unreachable right now" (refused while disconnected, dropped
 * with the connection, timed out) rather than a bug or a script's answer. The api turns these
 * into 503 + Retry-After; followers of an execution wait them out.
 */
export function isStoreUnavailable(error: unknown): boolean {
  const e = error as { name?: string; message?: string; code?: string } | null;
  if (!e || typeof e !== 'object') return false;
  return (
    e instanceof StoreUnavailableError ||
    e.name === 'MaxRetriesPerRequestError' ||
    e.code === 'ECONNREFUSED' ||
    e.code === 'ECONNRESET' ||
    /Stream isn't writeable|enableOfflineQueue|Connection is closed|Command aborted due to connection close|Socket timeout|Command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|LOADING|CLUSTERDOWN|TRYAGAIN|Cluster isn't ready|None of startup nodes is available|Failed to refresh slots cache|Too many Cluster redirections/.test(
      e.message ?? '',
    )
  );
}

/** Where a kernel would have to connect to reach the Redis of `url` (each seed node of a cluster). */
export function redisAddresses(url: string): { host: string; port: number }[] {
  const target = parseRedisTarget(url);
  if (target.kind === 'cluster') return target.nodes;
  const parsed = new URL(url);
  return [{ host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(parsed.port) || 6379 }];
}

/**
 * Whether the Redis of `url` serves a client that gives no credentials (answers PING rather than
 * NOAUTH): anyone who can open a connection to it can then read and change every tenant's data.
 * On a cluster, whether any seed node does.
 */
export async function redisServesWithoutPassword(url: string): Promise<boolean> {
  const tls = /^rediss/.test(url);
  const answers = await Promise.all(
    redisAddresses(url).map(async ({ host, port }) => {
      const probe = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableReadyCheck: false, ...(tls ? { tls: {} } : {}) });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }),
  );
  return answers.some(Boolean);
}
