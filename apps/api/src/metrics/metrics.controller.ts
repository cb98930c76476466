import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiMetrics } from './api-metrics.service';

/**
 * `GET /metrics`, Prometheus text format, without an API key: it carries tenant names and
 * counts, never keys, code, session or execution ids (docs/operations.md).
 */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: ApiMetrics) {}

  @Get()
  async scrape(@Res() res: Response): Promise<void> {
    const text = await this.metrics.registry.metrics();
    res.status(200).setHeader('Content-Type', this.metrics.registry.contentType);
    res.send(text);
  }
}
