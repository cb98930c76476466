import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ExecutionEvent } from '@kernelfleet/contracts';
import type { ApiConfig } from '@kernelfleet/config';
import type { ExecutionRef } from '@kernelfleet/store';
import { ApiMetrics } from '../metrics/api-metrics.service';
import { ProblemException } from '../problems/problem.exception';
import { API_CONFIG } from '../tokens';
import { EventFollower } from './event-follower';

/**
 * `GET /v1/executions/{id}/events` as Server-Sent Events: `id:` is the event seq, so a client
 * that reconnects with `Last-Event-ID` continues exactly after the last event it saw. Comment
 * lines keep idle connections open through proxies; the stream ends after `result`. A submit
 * that asks for `text/event-stream` is answered with the same stream (ExecutionsController).
 */
@Injectable()
export class ExecutionStreamService {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly follower: EventFollower,
    private readonly metrics: ApiMetrics,
  ) {}

  /**
   * Streams the events after seq `after` (from `parseLastEventId`) until `result`; `headers`
   * go out with the stream's own.
   */
  async stream(ref: ExecutionRef, after: number, req: FastifyRequest, reply: FastifyReply, headers: Record<string, string> = {}): Promise<void> {
    // The stream is written on Node's response; Fastify leaves it alone from here on.
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...headers,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write(': connected\n\n');

    const closed = new AbortController();
    const left = this.metrics.sseClientAttached();
    req.raw.on('close', () => closed.abort());
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), this.config.http.sseKeepaliveMs);
    try {
      await this.follower.follow(ref, after, (event) => res.write(formatEvent(event)), closed.signal);
    } finally {
      clearInterval(keepalive);
      left();
      res.end();
    }
  }
}

/** Whether a request's `Accept` names the event stream (a submit then answers with it). */
export function acceptsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}

export function formatEvent(event: ExecutionEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/**
 * `Last-Event-ID`: absent or empty → from the start; else the decimal seq of the last event seen
 * (up to 9 digits, surrounding spaces ignored). Anything else is a 400 naming the header.
 */
export function parseLastEventId(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  if (!/^\d{1,9}$/.test(value.trim())) {
    throw new ProblemException('validation', 400, 'Last-Event-ID: must be the non-negative integer id of an event');
  }
  return Number(value.trim());
}
