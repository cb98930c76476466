import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import type { ApiConfig } from '@kernelfleet/config';
import { ProblemException } from '../problems/problem.exception';
import { API_CONFIG } from '../tokens';

export interface TenantRequest extends Request {
  tenant: string;
}

/** `Authorization: Bearer <api key>`; the key decides the tenant every call acts for. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: [Buffer, string][];

  constructor(@Inject(API_CONFIG) config: ApiConfig) {
    this.keys = [...config.auth.tenantByKey].map(([key, tenant]) => [Buffer.from(key), tenant]);
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<TenantRequest>();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const tenant = match ? this.tenantOf(Buffer.from(match[1])) : undefined;
    if (!tenant) {
      throw new ProblemException('unauthorized', 401, 'missing or unknown API key (Authorization: Bearer <key>)', {}, {
        'WWW-Authenticate': 'Bearer',
      });
    }
    req.tenant = tenant;
    return true;
  }

  private tenantOf(presented: Buffer): string | undefined {
    let found: string | undefined;
    for (const [key, tenant] of this.keys) {
      if (key.length === presented.length && timingSafeEqual(key, presented)) found = tenant;
    }
    return found;
  }
}
