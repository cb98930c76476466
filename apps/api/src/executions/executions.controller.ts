import { Body, Controller, Get, Headers, HttpCode, Logger, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { logFields } from '@kernelfleet/telemetry';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { Tenant } from '../auth/tenant.decorator';
import { ApiMetrics } from '../metrics/api-metrics.service';
import { requireJson } from '../problems/body-parsers';
import { ProblemException } from '../problems/problem.exception';
import { ExecutionsService } from './executions.service';
import { acceptsEventStream, ExecutionStreamService, parseEventTypes, parseLastEventId } from './execution-stream.service';

@Controller('v1')
@UseGuards(ApiKeyGuard)
export class ExecutionsController {
  private readonly logger = new Logger(ExecutionsController.name);

  constructor(
    private readonly executions: ExecutionsService,
    private readonly stream: ExecutionStreamService,
    private readonly metrics: ApiMetrics,
  ) {}

  @Post('sessions/:sessionId/executions')
  async submit(
    @Tenant() tenant: string,
    @Param('sessionId') sessionId: string,
    @Query('wait') wait: string | undefined,
    @Query('events') events: string | string[] | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Body() body: unknown,
    @Req() req: FastifyRequest,
    @Res() res: FastifyReply,
  ): Promise<void> {
    requireJson(req);
    if (wait !== undefined && wait !== 'true' && wait !== 'false') {
      throw new ProblemException('validation', 400, 'wait: must be true or false');
    }
    const streamed = acceptsEventStream(req.headers.accept);
    if (streamed && wait === 'true') {
      throw new ProblemException('validation', 400, 'wait=true answers the terminal execution as JSON; for the event stream (Accept: text/event-stream) leave wait out');
    }
    const only = parseEventTypes(events);
    if (only && !streamed) throw new ProblemException('validation', 400, 'events: picks the event types of the event stream; send it with Accept: text/event-stream');
    // What the request takes comes through this process's channel: the end for wait=true and a
    // stream of the result alone, every event for any other stream.
    const following = wait === 'true' || only?.size === 1 ? 'result' : streamed ? 'events' : 'nothing';
    const submitted = await this.executions.submit(tenant, sessionId, body, idempotencyKey, following);
    const { accepted, replayed } = submitted;
    if (!replayed) this.metrics.executionAccepted(tenant);
    this.logger.debug(logFields(replayed ? 'execution replayed' : 'execution accepted', { executionId: accepted.executionId, sessionId, tenant, seq: accepted.seq }));
    const headers: Record<string, string> = { Location: `/v1/executions/${accepted.executionId}` };
    if (replayed) headers['Idempotent-Replayed'] = 'true';
    if (streamed) {
      // Submit and follow in one request: the execution's events from the first, as
      // GET …/events gives them; a client that loses the stream resumes there.
      const streamHeaders = { ...headers, 'Execution-Seq': String(accepted.seq) };
      await this.stream.stream(submitted.ref, 0, req, res, { headers: streamHeaders, only, waiter: submitted.waiter, followed: submitted.followed });
      return;
    }
    res.headers(headers);
    if (wait !== 'true') {
      res.status(202).send(accepted);
      return;
    }
    const closed = new AbortController();
    res.raw.on('close', () => closed.abort());
    const result = await this.executions.waitForResult(submitted, closed.signal);
    if (!res.sent && !closed.signal.aborted) res.status(200).send(result);
  }

  @Get('executions/:executionId')
  async get(@Tenant() tenant: string, @Param('executionId') id: string) {
    return this.executions.get(await this.executions.locate(tenant, id));
  }

  @Get('executions/:executionId/events')
  async events(
    @Tenant() tenant: string,
    @Param('executionId') id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Query('events') events: string | string[] | undefined,
    @Req() req: FastifyRequest,
    @Res() res: FastifyReply,
  ): Promise<void> {
    // The request is checked before the lookup: a malformed one is a 400 whether or not the id exists.
    const after = parseLastEventId(lastEventId);
    const only = parseEventTypes(events);
    await this.stream.stream(await this.executions.locate(tenant, id), after, req, res, { only });
  }

  @Get('executions/:executionId/artifact')
  async artifact(@Tenant() tenant: string, @Param('executionId') id: string, @Res() res: FastifyReply): Promise<void> {
    const artifact = await this.executions.artifact(await this.executions.locate(tenant, id));
    res.status(200).type('text/plain; charset=utf-8').send(artifact);
  }

  @Post('executions/:executionId/cancel')
  @HttpCode(202)
  async cancel(@Tenant() tenant: string, @Param('executionId') id: string) {
    return this.executions.cancel(await this.executions.locate(tenant, id));
  }
}
