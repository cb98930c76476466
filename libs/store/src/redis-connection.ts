import Redis, { type RedisOptions } from 'ioredis';

/**
 * Connections for the three uses we have: `command` fails a request quickly while Redis is
 * unreachable (the api answers 503 instead of hanging), `blocking` is what BullMQ workers need
 * (no per-request retry limit), `subscriber` carries pub/sub only.
 */
export type ConnectionRole = 'command' | 'blocking' | 'subscriber';

export function createRedis(url: string, role: ConnectionRole, name: string): Redis {
  const options: RedisOptions = {
    connectionName: name,
    lazyConnect: false,
    maxRetriesPerRequest: role === 'command' ? 2 : null,
    enableReadyCheck: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  };
  return new Redis(url, options);
}
