import { createHash } from 'node:crypto';
import { digestApiKey, digestsEqual, generateApiKey, keyIdOf } from './api-key-format';

describe('API key format', () => {
  it('generates kf_<keyId>_<secret> keys whose id parses back and whose digest is their SHA-256', () => {
    const { keyId, key, digest } = generateApiKey();
    expect(key).toMatch(/^kf_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(keyIdOf(key)).toBe(keyId);
    expect(digest).toBe(createHash('sha256').update(key).digest('hex'));
    expect(digest).not.toContain(key.slice(20));
  });

  it('never generates the same key twice', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateApiKey().key));
    expect(keys.size).toBe(200);
  });

  it.each([
    ['an env-style key', 'key-0123456789abcdef'],
    ['an upper-case id', `kf_0123456789ABCDEF_${'a'.repeat(43)}`],
    ['a short id', `kf_0123456789abcde_${'a'.repeat(43)}`],
    ['a short secret', `kf_0123456789abcdef_${'a'.repeat(42)}`],
    ['a long secret', `kf_0123456789abcdef_${'a'.repeat(44)}`],
    ['a secret with padding', `kf_0123456789abcdef_${'a'.repeat(42)}=`],
    ['trailing text', `kf_0123456789abcdef_${'a'.repeat(43)} x`],
    ['another prefix', `kk_0123456789abcdef_${'a'.repeat(43)}`],
  ])('does not take %s for a stored key', (_label, presented) => {
    expect(keyIdOf(presented)).toBeNull();
  });

  it('compares digests by value, refusing malformed ones', () => {
    const a = digestApiKey('one');
    expect(digestsEqual(a, digestApiKey('one'))).toBe(true);
    expect(digestsEqual(a, digestApiKey('two'))).toBe(false);
    expect(digestsEqual(a, a.slice(0, 62))).toBe(false);
    expect(digestsEqual('', '')).toBe(false);
  });
});
