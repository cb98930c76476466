import { createHash } from 'node:crypto';
import type { KeySpace } from './keys';
import type { RedisClient } from './redis-connection';

/**
 * What an `Idempotency-Key` stands for: the request it was first used with (fingerprint) and
 * the execution that request created. `seq` is absent while the claim is pending (the
 * execution is being accepted under `executionId`).
 */
export interface IdempotencyRecord {
  fingerprint: string;
  sessionId: string;
  executionId: string;
  seq?: number;
  /** When the key was claimed (ms): a claim pending for long was left by a stalled api. */
  claimedAt: number;
}

/**
 * The tenants' `Idempotency-Key` records, as steps of their own: what a Redis Cluster runs
 * around the accept (Submissions), and what the api reads of a key already taken. On one Redis
 * a new key is claimed inside the accept's script (submit-17.lua).
 */
export class IdempotencyKeys {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  /** The Redis key of a tenant's `Idempotency-Key` (its text hashed: any printable character may appear in it). */
  redisKey(tenant: string, key: string): string {
    return this.keys.idempotency(tenant, createHash('sha256').update(key).digest('hex'));
  }

  /**
   * Claims a key for a new request (SET NX, expiring after `ttlSeconds`, independent of
   * execution retention). Answers null when the claim is ours, else the record already there.
   */
  async claim(tenant: string, key: string, claim: IdempotencyRecord, ttlSeconds: number): Promise<IdempotencyRecord | null> {
    const redisKey = this.redisKey(tenant, key);
    for (;;) {
      if ((await this.redis.set(redisKey, JSON.stringify(claim), 'EX', ttlSeconds, 'NX')) === 'OK') return null;
      const existing = await this.redis.get(redisKey);
      // Gone between the two calls (expired): claim again.
      if (existing) return JSON.parse(existing) as IdempotencyRecord;
    }
  }

  async read(tenant: string, key: string): Promise<IdempotencyRecord | null> {
    const existing = await this.redis.get(this.redisKey(tenant, key));
    return existing ? (JSON.parse(existing) as IdempotencyRecord) : null;
  }

  /**
   * Records the accepted execution's seq under the key, keeping the claim's TTL. Whoever
   * completes a claim writes the same record, so a repeated completion is harmless.
   */
  async complete(tenant: string, key: string, record: IdempotencyRecord & { seq: number }): Promise<void> {
    await this.redis.set(this.redisKey(tenant, key), JSON.stringify(record), 'KEEPTTL', 'XX');
  }

  /**
   * Gives up our own pending claim of a key (its request was refused before accept), so a
   * retry with the key starts afresh. Only a claim still naming our execution is removed.
   */
  async dropClaim(tenant: string, key: string, claim: IdempotencyRecord): Promise<void> {
    const record = await this.read(tenant, key);
    if (record && record.executionId === claim.executionId && record.seq === undefined) await this.redis.del(this.redisKey(tenant, key));
  }
}
