import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KEY_ID_PATTERN } from '@kernelfleet/contracts';

/** `kf_<keyId>_<secret>` (see contracts/api-keys): 16 hex, then 32 random bytes in base64url. */
const KEY_PATTERN = /^kf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewApiKey {
  keyId: string;
  /** The key itself: shown once, never stored. */
  key: string;
  /** SHA-256 of the key (hex): what is stored. */
  digest: string;
}

/** A fresh key: 64 random bits of id and 256 random bits of secret. */
export function generateApiKey(): NewApiKey {
  const keyId = randomBytes(8).toString('hex');
  const key = `kf_${keyId}_${randomBytes(32).toString('base64url')}`;
  return { keyId, key, digest: digestApiKey(key) };
}

/** The key id of a well-formed stored-key token, or null (an env key or garbage). */
export function keyIdOf(presented: string): string | null {
  const match = KEY_PATTERN.exec(presented);
  return match && KEY_ID_PATTERN.test(match[1]) ? match[1] : null;
}

/**
 * SHA-256 (hex). A fast hash is right here: keys carry 256 random bits, so there is nothing to
 * brute-force that a slow password hash (bcrypt, scrypt) would protect, and every request pays it.
 */
export function digestApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Compares two hex digests in constant time (false for malformed or different lengths). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}
