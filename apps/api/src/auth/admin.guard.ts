import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { ApiConfig } from '@kernelfleet/config';
import { digestApiKey, digestsEqual } from '@kernelfleet/store';
import { noRoute } from '../problems/routing';
import { API_CONFIG } from '../tokens';
import { bearerToken, unauthorized } from './bearer';

/**
 * `Authorization: Bearer <ADMIN_KEY>` for the operator endpoints. Tenant keys are not admin keys.
 * Without ADMIN_KEY the endpoints do not exist: they answer exactly what an unknown route does.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly adminDigest?: string;

  constructor(@Inject(API_CONFIG) config: ApiConfig) {
    this.adminDigest = config.auth.adminKey === undefined ? undefined : digestApiKey(config.auth.adminKey);
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    if (!this.adminDigest) throw noRoute(req);
    const token = bearerToken(req.headers.authorization);
    // Digests have one length, so the comparison takes the same time whatever was presented.
    if (!token || !digestsEqual(digestApiKey(token), this.adminDigest)) {
      throw unauthorized('missing or wrong admin key (Authorization: Bearer <ADMIN_KEY>)');
    }
    return true;
  }
}
