import type { RedisClient } from './redis-connection';
import type { ApiKeyInfo, CreatedApiKey } from '@kernelfleet/contracts';
import { generateApiKey } from './api-key-format';
import { KeySpace } from './keys';
import { createRedis } from './redis-connection';

/** What the api needs to check a presented key: its digest and tenant. */
export interface StoredApiKey {
  digest: string;
  tenant: string;
}

/**
 * API keys stored in Redis: only a SHA-256 digest of each key, with its tenant, label and
 * creation time. Create and revoke are one MULTI each (all keys share one slot), so a key is
 * either listed and usable or gone.
 */
export class ApiKeyRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  /**
   * A repository on a connection of its own, for tools that need nothing else from the store
   * (the keys CLI). `close()` disconnects it.
   */
  static connect(options: { redisUrl: string; keyPrefix: string; clientName: string }): ApiKeyRepository & { close(): void } {
    const redis = createRedis(options.redisUrl, 'command', options.clientName);
    // Connection errors reach the caller as failed commands; no unhandled 'error' event noise.
    redis.on('error', () => undefined);
    const repository = new ApiKeyRepository(redis, new KeySpace(options.keyPrefix));
    return Object.assign(repository, { close: () => redis.disconnect() });
  }

  /** Creates a key for the tenant; the answer is the only place the key itself ever appears. */
  async create(tenant: string, label = '', now = Date.now()): Promise<CreatedApiKey> {
    const { keyId, key, digest } = generateApiKey();
    await this.redis
      .multi()
      .hset(this.keys.apiKey(keyId), { digest, tenant, label, createdAt: String(now) })
      .zadd(this.keys.apiKeyIndex(), now, keyId)
      .exec()
      .then(throwOnFailure);
    return { keyId, tenant, label, createdAt: now, key };
  }

  /** The digest and tenant of a key id, or null when there is no such key (never made, or revoked). */
  async find(keyId: string): Promise<StoredApiKey | null> {
    const [digest, tenant] = await this.redis.hmget(this.keys.apiKey(keyId), 'digest', 'tenant');
    return digest && tenant ? { digest, tenant } : null;
  }

  /** Stored keys, oldest first, of one tenant or all. */
  async list(tenant?: string): Promise<ApiKeyInfo[]> {
    const ids = await this.redis.zrange(this.keys.apiKeyIndex(), 0, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.apiKey(id), 'tenant', 'label', 'createdAt');
    const rows = await pipeline.exec().then(throwOnFailure);
    const found: ApiKeyInfo[] = [];
    ids.forEach((keyId, i) => {
      const [keyTenant, label, createdAt] = rows[i] as (string | null)[];
      if (!keyTenant || (tenant !== undefined && keyTenant !== tenant)) return;
      found.push({ keyId, tenant: keyTenant, label: label ?? '', createdAt: Number(createdAt) });
    });
    return found;
  }

  /** Deletes the key; answers what it was, or null when there was no such key. */
  async revoke(keyId: string): Promise<ApiKeyInfo | null> {
    const [record] = (await this.redis
      .multi()
      .hgetall(this.keys.apiKey(keyId))
      .del(this.keys.apiKey(keyId))
      .zrem(this.keys.apiKeyIndex(), keyId)
      .exec()
      .then(throwOnFailure)) as [Record<string, string>, ...unknown[]];
    if (!record?.tenant) return null;
    return { keyId, tenant: record.tenant, label: record.label ?? '', createdAt: Number(record.createdAt) };
  }
}

/** The replies of a MULTI or pipeline; the first failed command's error is thrown. */
function throwOnFailure(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('Redis transaction was aborted');
  const failed = results.find(([error]) => error);
  if (failed) throw failed[0];
  return results.map(([, value]) => value);
}
