import { Controller, Get } from '@nestjs/common';
import { FleetStore } from '@kernelfleet/store';
import { ProblemException } from '../problems/problem.exception';

@Controller('health')
export class HealthController {
  constructor(private readonly store: FleetStore) {}

  /** The process serves HTTP. */
  @Get('live')
  live() {
    return { status: 'ok' };
  }

  /** The process can accept work: Redis answers. */
  @Get('ready')
  async ready() {
    if (!(await this.store.ping())) throw new ProblemException('unavailable', 503, 'Redis is not reachable');
    return { status: 'ok' };
  }
}
