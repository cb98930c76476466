import { Body, Controller, HttpCode, Param, Post, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { Tenant } from '../auth/tenant.decorator';
import { requireJson } from '../problems/body-parsers';
import { ToolCallsService } from './tool-calls.service';

@Controller('v1')
@UseGuards(ApiKeyGuard)
export class ToolCallsController {
  constructor(private readonly toolCalls: ToolCallsService) {}

  @Post('executions/:executionId/tool-calls/:callId')
  @HttpCode(200)
  answer(@Tenant() tenant: string, @Param('executionId') executionId: string, @Param('callId') callId: string, @Body() body: unknown, @Req() req: FastifyRequest) {
    requireJson(req);
    return this.toolCalls.answer(tenant, executionId, callId, body);
  }
}
