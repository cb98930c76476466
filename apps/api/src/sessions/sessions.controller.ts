import { Controller, Delete, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { Tenant } from '../auth/tenant.decorator';
import { SessionsService } from './sessions.service';

@Controller('v1/sessions')
@UseGuards(ApiKeyGuard)
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  @Get(':sessionId')
  get(@Tenant() tenant: string, @Param('sessionId') sessionId: string) {
    return this.sessions.get(tenant, sessionId);
  }

  @Post(':sessionId/cancel-pending')
  @HttpCode(200)
  cancelPending(@Tenant() tenant: string, @Param('sessionId') sessionId: string) {
    return this.sessions.cancelPending(tenant, sessionId);
  }

  @Delete()
  @HttpCode(200)
  disposeAll(@Tenant() tenant: string) {
    return this.sessions.disposeAll(tenant);
  }

  @Delete(':sessionId')
  @HttpCode(200)
  dispose(@Tenant() tenant: string, @Param('sessionId') sessionId: string) {
    return this.sessions.dispose(tenant, sessionId);
  }
}
