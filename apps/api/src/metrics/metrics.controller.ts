import { Controller, Get, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ApiMetrics } from './api-metrics.service';

/**
 * `GET /metrics`, Prometheus text format, without an API key: it carries tenant names and
 * counts, never keys, code, session or execution ids (docs/operations.md).
 */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: ApiMetrics) {}

  @Get()
  async scrape(@Res() res: FastifyReply): Promise<void> {
    const text = await this.metrics.registry.metrics();
    res.status(200).type(this.metrics.registry.contentType).send(text);
  }
}
