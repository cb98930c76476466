import { Injectable } from '@nestjs/common';
import { createApiKeySchema, KEY_ID_PATTERN, TENANT_PATTERN, type ApiKeyInfo, type CreatedApiKey } from '@kernelfleet/contracts';
import { FleetStore } from '@kernelfleet/store';
import { TenantKeysService } from '../auth/tenant-keys.service';
import { invalid, notFound } from '../problems/problem.exception';

/** Operator management of the API keys stored in Redis (the keys CLI does the same). */
@Injectable()
export class AdminKeysService {
  constructor(
    private readonly store: FleetStore,
    private readonly tenantKeys: TenantKeysService,
  ) {}

  async create(body: unknown): Promise<CreatedApiKey> {
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid([{ field: 'body', message: 'must be a JSON object' }]);
    }
    const parsed = createApiKeySchema.safeParse(body);
    if (!parsed.success) {
      throw invalid(parsed.error.issues.map((i) => ({ field: i.path.join('.') || 'body', message: i.message })));
    }
    return this.store.apiKeys.create(parsed.data.tenant, parsed.data.label);
  }

  async list(tenant: string | undefined): Promise<{ keys: ApiKeyInfo[] }> {
    if (tenant !== undefined && !TENANT_PATTERN.test(tenant)) {
      throw invalid([{ field: 'tenant', message: 'must be 1-64 characters of A-Z a-z 0-9 _ -' }]);
    }
    return { keys: await this.store.apiKeys.list(tenant) };
  }

  /** Other replicas stop accepting the key within their cache bound; this one at once. */
  async revoke(keyId: string): Promise<ApiKeyInfo> {
    if (!KEY_ID_PATTERN.test(keyId)) throw invalid([{ field: 'keyId', message: 'must be 16 lowercase hex characters' }]);
    const revoked = await this.store.apiKeys.revoke(keyId);
    this.tenantKeys.forget(keyId);
    if (!revoked) throw notFound(`key ${keyId}`);
    return revoked;
  }
}
