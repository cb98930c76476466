import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { KernelfleetError, problemOf } from './errors.js';
import { retryAfterMs, seg, type HttpTransport } from './http.js';
import type { ExecutionEvent, ExecutionEventType } from './types.js';

export interface FollowOptions {
  /** Events up to this seq were seen already: the stream starts after it (0: from the first). */
  after: number;
  signal?: AbortSignal;
  /** A connection silent this long (no event, no keepalive comment) is taken as dropped. */
  idleTimeoutMs: number;
  /** The stream already open from the start (a submit answered with it): read before any GET. */
  opened?: Response;
  /** The event types to stream (`result` always comes); all of them when undefined. */
  events?: readonly ExecutionEventType[];
}

/** `?events=…` for a stream of some event types only (`result` always comes), or '' for all. */
export function eventsQuery(events: readonly ExecutionEventType[] | undefined): string {
  return events ? `?events=${events.join(',') || 'result'}` : '';
}

class StreamDropped extends Error {}

/**
 * The events of one execution, each once and in order, up to its `result`. A connection that
 * drops, ends early or goes silent is opened again with `Last-Event-ID` (the last seq seen);
 * one outage may cost the transport's retry budget, and every event delivered renews it.
 */
export async function* followEvents(transport: HttpTransport, executionId: string, opts: FollowOptions): AsyncGenerator<ExecutionEvent> {
  const path = `/v1/executions/${seg(executionId)}/events${eventsQuery(opts.events)}`;
  const outage = transport.outage(`following execution ${executionId}`);
  let last = opts.after;
  let opened = opts.opened;
  for (;;) {
    const connection = new AbortController();
    const stop = () => connection.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', stop, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new StreamDropped(`no data for ${opts.idleTimeoutMs} ms`)), opts.idleTimeoutMs);
    };
    try {
      touch();
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (last > 0) headers['last-event-id'] = String(last);
      const res = opened ?? (await transport.send('GET', path, { headers, signal: connection.signal }));
      opened = undefined;
      if (!res.ok) {
        const problem = new KernelfleetError(await problemOf(res));
        if (![429, 502, 503, 504].includes(res.status)) throw problem;
        await outage.failed(problem, retryAfterMs(res.headers.get('retry-after')), opts.signal);
        continue;
      }
      if (!res.body) throw new StreamDropped('the answer has no body');
      const parsed: EventSourceMessage[] = [];
      const parser = createParser({ onEvent: (message) => parsed.push(message), onComment: touch });
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      // An opened stream was not fetched under this connection's signal: its abort (idle, the
      // caller's signal) ends the read here instead.
      connection.signal.addEventListener('abort', () => void reader.cancel().catch(() => undefined), { once: true });
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          touch();
          parser.feed(decoder.decode(value, { stream: true }));
          for (const message of parsed.splice(0)) {
            const event = toEvent(message);
            if (!event || event.seq <= last) continue;
            last = event.seq;
            outage.progressed();
            // The consumer's time is not the connection's silence.
            clearTimeout(idle);
            yield event;
            if (event.type === 'result') return;
            touch();
          }
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
      throw new StreamDropped('the stream ended before the result');
    } catch (error) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (error instanceof KernelfleetError) throw error;
      const reason = connection.signal.reason instanceof StreamDropped ? connection.signal.reason : error;
      await outage.failed(reason, undefined, opts.signal);
    } finally {
      clearTimeout(idle);
      opts.signal?.removeEventListener('abort', stop);
    }
  }
}

/** A typed event from an SSE message with a numeric id and JSON data; anything else is skipped. */
function toEvent(message: EventSourceMessage): ExecutionEvent | null {
  const seq = Number(message.id);
  if (!message.event || !Number.isSafeInteger(seq) || seq <= 0) return null;
  return { seq, type: message.event, data: JSON.parse(message.data) } as ExecutionEvent;
}
