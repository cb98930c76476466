import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { TenantRequest } from './api-key.guard';

/** The tenant the request's API key belongs to (set by ApiKeyGuard). */
export const Tenant = createParamDecorator(
  (_: unknown, context: ExecutionContext) => context.switchToHttp().getRequest<TenantRequest>().tenant,
);
