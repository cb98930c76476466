import { generateApiKey, type NewApiKey, type StoredApiKey } from '@kernelfleet/store';
import { ProblemException } from '../problems/problem.exception';
import { KEY_CACHE_MAX_ENTRIES, TenantKeysService } from './tenant-keys.service';

/** An in-memory key store that counts lookups and can be made to fail like an unreachable Redis. */
class FakeKeyStore {
  readonly records = new Map<string, StoredApiKey>();
  lookups = 0;
  down = false;

  add(tenant: string): NewApiKey {
    const key = generateApiKey();
    this.records.set(key.keyId, { digest: key.digest, tenant });
    return key;
  }

  async find(keyId: string): Promise<StoredApiKey | null> {
    this.lookups++;
    if (this.down) throw new Error('Connection is closed.');
    return this.records.get(keyId) ?? null;
  }
}

describe('TenantKeysService', () => {
  let store: FakeKeyStore;
  let now: number;
  const service = (cacheMs = 5_000, env: [string, string][] = [['env-key-aaaaaaaa', 'local']]) =>
    new TenantKeysService({ tenantByKey: new Map(env), keyCacheMs: cacheMs }, store, () => now);

  beforeEach(() => {
    store = new FakeKeyStore();
    now = 1_000_000;
  });

  it('answers env keys without asking the store, even while it is down', async () => {
    store.down = true;
    const keys = service();
    expect(await keys.tenantOf('env-key-aaaaaaaa')).toBe('local');
    expect(await keys.tenantOf('env-key-aaaaaaab')).toBeNull();
    expect(store.lookups).toBe(0);
  });

  it('answers a stored key by its id and digest, and refuses the id with another secret', async () => {
    const keys = service();
    const { key, keyId } = store.add('acme');
    expect(await keys.tenantOf(key)).toBe('acme');
    const forged = `kf_${keyId}_${'A'.repeat(43)}`;
    expect(await keys.tenantOf(forged)).toBeNull();
  });

  it('does not ask the store about tokens that are not stored-key shaped', async () => {
    const keys = service();
    expect(await keys.tenantOf('not-a-key')).toBeNull();
    expect(store.lookups).toBe(0);
  });

  it('reuses an answer for the cache bound, then asks again: a revoked key stops within it', async () => {
    const keys = service(5_000);
    const { key, keyId } = store.add('acme');
    expect(await keys.tenantOf(key)).toBe('acme');
    store.records.delete(keyId); // revoked elsewhere
    now += 4_999;
    expect(await keys.tenantOf(key)).toBe('acme');
    expect(store.lookups).toBe(1);
    now += 1;
    expect(await keys.tenantOf(key)).toBeNull();
    expect(store.lookups).toBe(2);
  });

  it('caches unknown keys too, so a flood of one bad key is one lookup per bound', async () => {
    const keys = service(5_000);
    const unknown = generateApiKey().key;
    for (let i = 0; i < 10; i++) expect(await keys.tenantOf(unknown)).toBeNull();
    expect(store.lookups).toBe(1);
  });

  it('makes one lookup for concurrent requests with one uncached key', async () => {
    const keys = service();
    const { key } = store.add('acme');
    expect(await Promise.all([keys.tenantOf(key), keys.tenantOf(key), keys.tenantOf(key)])).toEqual(['acme', 'acme', 'acme']);
    expect(store.lookups).toBe(1);
  });

  it('asks the store every time with a zero bound', async () => {
    const keys = service(0);
    const { key } = store.add('acme');
    await keys.tenantOf(key);
    await keys.tenantOf(key);
    expect(store.lookups).toBe(2);
    expect(keys.cachedEntries).toBe(0);
  });

  it('forgets a key revoked on this replica at once', async () => {
    const keys = service();
    const { key, keyId } = store.add('acme');
    expect(await keys.tenantOf(key)).toBe('acme');
    store.records.delete(keyId);
    keys.forget(keyId);
    expect(await keys.tenantOf(key)).toBeNull();
  });

  it('answers 503, not "unknown", when the store is down, and does not cache the failure', async () => {
    const keys = service();
    const { key } = store.add('acme');
    store.down = true;
    const failure = await keys.tenantOf(key).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ProblemException);
    expect((failure as ProblemException).problem).toMatchObject({ status: 503 });
    store.down = false;
    expect(await keys.tenantOf(key)).toBe('acme');
  });

  it('keeps at most KEY_CACHE_MAX_ENTRIES entries, dropping the oldest', async () => {
    const keys = service();
    const first = store.add('acme');
    await keys.tenantOf(first.key);
    for (let i = 0; i < KEY_CACHE_MAX_ENTRIES; i++) await keys.tenantOf(`kf_${i.toString(16).padStart(16, '0')}_${'b'.repeat(43)}`);
    expect(keys.cachedEntries).toBe(KEY_CACHE_MAX_ENTRIES);
    const before = store.lookups;
    await keys.tenantOf(first.key); // evicted: asked again
    expect(store.lookups).toBe(before + 1);
  });
});
