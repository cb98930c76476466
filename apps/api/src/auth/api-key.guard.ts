import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { bearerToken, unauthorized } from './bearer';
import { TenantKeysService } from './tenant-keys.service';

export type TenantRequest = FastifyRequest & { tenant: string };

/** `Authorization: Bearer <api key>`; the key decides the tenant every call acts for. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly keys: TenantKeysService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<TenantRequest>();
    const token = bearerToken(req.headers.authorization);
    const tenant = token ? await this.keys.tenantOf(token) : null;
    if (!tenant) throw unauthorized('missing or unknown API key (Authorization: Bearer <key>)');
    req.tenant = tenant;
    return true;
  }
}
