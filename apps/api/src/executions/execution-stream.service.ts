import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EXECUTION_EVENT_TYPES, type ExecutionEvent, type ExecutionEventType } from '@kernelfleet/contracts';
import type { ApiConfig } from '@kernelfleet/config';
import type { ExecutionRef, FollowedExecution, ResultWaiter } from '@kernelfleet/store';
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
   * go out with the stream's own. `only`: the types to send (`parseEventTypes`), `result`
   * always among them. A submit's stream gets its events from this process's channel, with no
   * subscription of its own: the result alone through the submit's `waiter`, every event
   * through its `followed`.
   */
  async stream(ref: ExecutionRef, after: number, req: FastifyRequest, reply: FastifyReply, opts: StreamOptions = {}): Promise<void> {
    const { headers = {}, only, waiter, followed } = opts;
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
      if (waiter && only?.size === 1) {
        const result = await this.follower.awaitResult(ref, waiter, closed.signal);
        if (result && result.seq > after) res.write(formatEvent(result));
      } else {
        const send = (event: ExecutionEvent) => (!only || only.has(event.type)) && res.write(formatEvent(event));
        await this.follower.follow(ref, after, send, closed.signal, followed);
      }
    } finally {
      waiter?.cancel();
      followed?.cancel();
      clearInterval(keepalive);
      left();
      res.end();
    }
  }
}

export interface StreamOptions {
  headers?: Record<string, string>;
  only?: ReadonlySet<ExecutionEventType>;
  waiter?: ResultWaiter;
  followed?: FollowedExecution;
}

/**
 * `?events=`: the comma-separated event types a stream sends (`result` always among them), or
 * undefined for all of them; a type not in EXECUTION_EVENT_TYPES is a 400 naming the parameter.
 */
export function parseEventTypes(value: string | string[] | undefined): ReadonlySet<ExecutionEventType> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ProblemException('validation', 400, 'events: give it once, the types separated by commas');
  const types = new Set<ExecutionEventType>(['result']);
  for (const name of value.split(',').map((t) => t.trim())) {
    if (name === '') continue;
    if (!(EXECUTION_EVENT_TYPES as readonly string[]).includes(name)) {
      throw new ProblemException('validation', 400, `events: "${name.slice(0, 64)}" is not an event type (${EXECUTION_EVENT_TYPES.join(', ')})`);
    }
    types.add(name as ExecutionEventType);
  }
  return types;
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
