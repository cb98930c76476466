import { z } from 'zod';
import { TENANT_PATTERN } from './ids';

/**
 * Stored API keys (wire contract). A key reads `kf_<keyId>_<secret>`: `keyId` is 16 lowercase
 * hex characters (public: it names the key in listings and revocations), `secret` is 32 random
 * bytes in base64url (43 characters). Only a SHA-256 digest of the whole key is stored.
 */
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

/** Labels: up to 100 printable characters (no control characters), for people reading lists. */
export const KEY_LABEL_PATTERN = /^[^\p{Cc}]{0,100}$/u;

export const tenantSchema = z.string().regex(TENANT_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 _ -');

export const keyLabelSchema = z.string().regex(KEY_LABEL_PATTERN, 'must be at most 100 characters, no control characters');

/** Body of `POST /admin/keys` (operator endpoint). Unknown fields are an error. */
export const createApiKeySchema = z.strictObject({
  tenant: tenantSchema,
  label: keyLabelSchema.optional(),
});
export type CreateApiKey = z.infer<typeof createApiKeySchema>;

/** A stored key as listings show it: never the key, never its digest. */
export interface ApiKeyInfo {
  keyId: string;
  tenant: string;
  label: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** `201` answer of `POST /admin/keys`: the only time the key itself is shown. */
export interface CreatedApiKey extends ApiKeyInfo {
  key: string;
}
