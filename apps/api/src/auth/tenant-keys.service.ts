import { digestApiKey, digestsEqual, keyIdOf, type StoredApiKey } from '@kernelfleet/store';
import { ProblemException } from '../problems/problem.exception';

/** Entries the cache holds at most; beyond it the oldest go first. */
export const KEY_CACHE_MAX_ENTRIES = 10_000;

interface CacheEntry {
  keyId: string;
  expiresAt: number;
  /** A promise, so concurrent requests with one uncached key make one Redis lookup. */
  tenant: Promise<string | null>;
}

export interface TenantKeysOptions {
  /** API_KEYS: key → tenant. */
  tenantByKey: Map<string, string>;
  /** How long an answer about a stored key is reused: a revoked key works at most this long. */
  keyCacheMs: number;
}

/**
 * Which tenant a presented API key belongs to: keys from API_KEYS first, then keys stored in
 * Redis (`kf_<keyId>_<secret>`, found by id, their SHA-256 compared in constant time). Answers
 * about stored keys, known or unknown, are kept `keyCacheMs` per replica.
 */
export class TenantKeysService {
  private readonly envKeys: [digest: string, tenant: string][];
  private readonly cache = new Map<string, CacheEntry>();

  private readonly keyCacheMs: number;

  constructor(
    options: TenantKeysOptions,
    private readonly store: { find(keyId: string): Promise<StoredApiKey | null> },
    private readonly now: () => number = Date.now,
  ) {
    this.envKeys = [...options.tenantByKey].map(([key, tenant]) => [digestApiKey(key), tenant]);
    this.keyCacheMs = options.keyCacheMs;
  }

  /**
   * The tenant of the key, or null for an unknown or revoked one. Throws a 503 problem when the
   * key store cannot be read: a valid key must not be answered 401 because Redis is down.
   */
  async tenantOf(presented: string): Promise<string | null> {
    const digest = digestApiKey(presented);
    const fromEnv = this.fromEnv(digest);
    if (fromEnv) return fromEnv;
    const keyId = keyIdOf(presented);
    if (!keyId) return null;

    const now = this.now();
    const cached = this.cache.get(digest);
    if (cached && cached.expiresAt > now) return cached.tenant;
    if (cached) this.cache.delete(digest);

    const tenant = this.lookUp(keyId, digest);
    if (this.keyCacheMs > 0) {
      this.makeRoom(now);
      const entry: CacheEntry = { keyId, expiresAt: now + this.keyCacheMs, tenant };
      this.cache.set(digest, entry);
      // A failed lookup is not an answer: the next request asks Redis again.
      tenant.catch(() => this.cache.get(digest) === entry && this.cache.delete(digest));
    }
    return tenant;
  }

  /** Forgets what this replica knows of a key (it was just revoked here). */
  forget(keyId: string): void {
    for (const [digest, entry] of this.cache) if (entry.keyId === keyId) this.cache.delete(digest);
  }

  get cachedEntries(): number {
    return this.cache.size;
  }

  private fromEnv(digest: string): string | undefined {
    let found: string | undefined;
    // Every env key is compared, so the time taken does not tell which one (or whether one) matched.
    for (const [envDigest, tenant] of this.envKeys) if (digestsEqual(envDigest, digest)) found = tenant;
    return found;
  }

  private async lookUp(keyId: string, digest: string): Promise<string | null> {
    let stored: StoredApiKey | null;
    try {
      stored = await this.store.find(keyId);
    } catch {
      throw new ProblemException('unavailable', 503, 'the API key cannot be checked: the key store is unreachable; retry shortly');
    }
    return stored && digestsEqual(stored.digest, digest) ? stored.tenant : null;
  }

  /** Drops expired entries (oldest first), then the oldest ones while the cache is full. */
  private makeRoom(now: number): void {
    if (this.cache.size < KEY_CACHE_MAX_ENTRIES) return;
    for (const [digest, entry] of this.cache) {
      if (entry.expiresAt > now) break;
      this.cache.delete(digest);
    }
    for (const digest of this.cache.keys()) {
      if (this.cache.size < KEY_CACHE_MAX_ENTRIES) break;
      this.cache.delete(digest);
    }
  }
}
