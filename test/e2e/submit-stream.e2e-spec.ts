import type { Execution } from '@kernelfleet/contracts';
import { KernelfleetClient } from '@kernelfleet/client';
import { readSse, type SseEvent } from '../support/sse-client';
import { Stack } from '../support/stack';

jest.setTimeout(60_000);

/**
 * A submit that asks for `text/event-stream` is answered with the execution's events, from the
 * first, as `GET /v1/executions/{id}/events` gives them: one request submits and follows. The
 * client library's executePython() submits this way.
 */

const PRINT_THREE = "import time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.05)";
const PRINTED = 'line 0\nline 1\nline 2\n';

const stdoutOf = (events: SseEvent[]) =>
  events
    .filter((e) => e.event === 'stdout')
    .map((e) => (JSON.parse(e.data) as { text: string }).text)
    .join('');

describe('submit answered with the event stream', () => {
  let stack: Stack;
  const submitUrl = (session: string) => `${stack.url}/v1/sessions/${session}/executions`;
  const headers = (extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${stack.apiKey}`,
    'content-type': 'application/json',
    accept: 'text/event-stream',
    ...extra,
  });
  const submitStreamed = (session: string, body: unknown, extra: Record<string, string> = {}, query = '') =>
    readSse(`${submitUrl(session)}${query}`, headers(extra), undefined, 30_000, { method: 'POST', body: JSON.stringify(body) });

  beforeAll(async () => {
    stack = await Stack.start();
    await stack.run('stream-a', { code: 'pass' });
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 200 with queued, started, the output and result, its id in Location and its seq in Execution-Seq', async () => {
    const read = await submitStreamed('stream-a', { code: PRINT_THREE });
    expect(read.status).toBe(200);
    expect(read.contentType).toMatch(/^text\/event-stream/);
    const location = read.headers.get('location')!;
    expect(location).toMatch(/^\/v1\/executions\/ex_[0-9a-f]+$/);
    const executionId = location.split('/').pop()!;

    expect(read.events.map((e) => Number(e.id))).toEqual(read.events.map((_, i) => i + 1));
    expect(read.events[0].event).toBe('queued');
    expect(read.events[1].event).toBe('started');
    expect(stdoutOf(read.events)).toBe(PRINTED);
    const result = JSON.parse(read.events.at(-1)!.data) as Execution;
    expect(read.events.at(-1)!.event).toBe('result');
    expect(result).toMatchObject({ executionId, sessionId: 'stream-a', status: 'completed' });
    expect(Number(read.headers.get('execution-seq'))).toBe(result.seq);
    expect(JSON.parse(read.events[0].data)).toEqual({ seq: result.seq });
    expect(await stack.get(executionId)).toEqual(result);
  });

  it('the same Idempotency-Key again streams the same execution from the first event, marked replayed', async () => {
    const key = `stream-${Date.now()}`;
    const first = await submitStreamed('stream-a', { code: "print('once')" }, { 'idempotency-key': key });
    const again = await submitStreamed('stream-a', { code: "print('once')" }, { 'idempotency-key': key });
    expect(again.status).toBe(200);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(again.events).toEqual(first.events);
    expect(stdoutOf(again.events)).toBe('once\n');
  });

  it('refuses a bad body, or wait=true with the stream, with 400 problem+json and accepts nothing', async () => {
    const badBody = await submitStreamed('stream-none', { code: 42 });
    const withWait = await submitStreamed('stream-none', { code: 'pass' }, {}, '?wait=true');
    for (const refused of [badBody, withWait]) {
      expect(refused.status).toBe(400);
      expect(refused.contentType).toMatch(/^application\/problem\+json/);
      expect(refused.events).toEqual([]);
    }
    const session = await stack.request('GET', '/v1/sessions/stream-none');
    expect(session.status).toBe(404);
  });

  it('executePython(): one request submits and follows; an api answering 202 instead is followed with a second', async () => {
    const requests: { method: string; path: string; query: string; status: number }[] = [];
    const logged = (strip: boolean) =>
      (async (input: string | URL | Request, init?: RequestInit) => {
        const sent = { ...((init?.headers ?? {}) as Record<string, string>) };
        const url = new URL(String(input));
        // An api without the streamed submit ignores Accept and ?events=: the same as not asking.
        if (strip) {
          delete sent.accept;
          url.searchParams.delete('events');
        }
        const res = await fetch(url, { ...init, headers: sent });
        requests.push({ method: init?.method ?? 'GET', path: url.pathname, query: new URL(String(input)).search, status: res.status });
        return res;
      }) as typeof fetch;

    const oneRequest = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey, fetch: logged(false) });
    let heard = '';
    const result = await oneRequest.executePython(PRINT_THREE, { sessionId: 'stream-a', onChunk: (text) => (heard += text) });
    expect(result).toMatchObject({ output: PRINTED, status: 'completed', exitCode: 0 });
    expect(heard).toBe(PRINTED);
    // It asks for what it reads: the output (for onChunk) and the result.
    expect(requests).toEqual([{ method: 'POST', path: '/v1/sessions/stream-a/executions', query: '?events=stdout,stderr,display', status: 200 }]);

    requests.length = 0;
    const quiet = await oneRequest.executePython(PRINT_THREE, { sessionId: 'stream-a' });
    expect(quiet).toMatchObject({ output: PRINTED, status: 'completed', exitCode: 0 });
    expect(requests).toEqual([{ method: 'POST', path: '/v1/sessions/stream-a/executions', query: '?events=result', status: 200 }]);

    requests.length = 0;
    const twoRequests = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey, fetch: logged(true) });
    const followed = await twoRequests.executePython(PRINT_THREE, { sessionId: 'stream-a' });
    expect(followed).toMatchObject({ output: PRINTED, status: 'completed' });
    expect(requests).toEqual([
      { method: 'POST', path: '/v1/sessions/stream-a/executions', query: '?events=result', status: 202 },
      { method: 'GET', path: `/v1/executions/${followed.executionId}/events`, query: '?events=result', status: 200 },
    ]);
  });

  it('?events= picks the types a stream carries, result always among them, each with the id it has in the whole stream', async () => {
    const picked = await submitStreamed('stream-a', { code: PRINT_THREE }, {}, '?events=stdout');
    expect(picked.status).toBe(200);
    const executionId = picked.headers.get('location')!.split('/').pop()!;
    const whole = await readSse(`${stack.url}/v1/executions/${executionId}/events`, { authorization: `Bearer ${stack.apiKey}` });
    expect(whole.events.map((e) => e.event)).toContain('started');
    expect(picked.events).toEqual(whole.events.filter((e) => e.event === 'stdout' || e.event === 'result'));
    expect(stdoutOf(picked.events)).toBe(PRINTED);

    // The result alone: on the submit (through the api's results channel) and on a GET.
    const alone = await submitStreamed('stream-a', { code: PRINT_THREE }, {}, '?events=result');
    expect(alone.events.map((e) => e.event)).toEqual(['result']);
    const aloneId = alone.headers.get('location')!.split('/').pop()!;
    const aloneWhole = await readSse(`${stack.url}/v1/executions/${aloneId}/events`, { authorization: `Bearer ${stack.apiKey}` });
    expect(alone.events).toEqual([aloneWhole.events.at(-1)]);
    expect(JSON.parse(alone.events[0].data)).toMatchObject({ executionId: aloneId, status: 'completed' });
    expect(stdoutOf(aloneWhole.events)).toBe(PRINTED);
    const got = await readSse(`${stack.url}/v1/executions/${aloneId}/events?events=result`, { authorization: `Bearer ${stack.apiKey}` });
    expect(got.events).toEqual(alone.events);
  });

  it('refuses an unknown event type, or ?events= without the event stream, with 400 problem+json and accepts nothing', async () => {
    const unknown = await submitStreamed('stream-events', { code: 'pass' }, {}, '?events=stdout,everything');
    const asJson = await stack.request('POST', '/v1/sessions/stream-events/executions?events=result', { code: 'pass' });
    expect(unknown.status).toBe(400);
    expect(unknown.contentType).toMatch(/^application\/problem\+json/);
    expect(asJson.status).toBe(400);
    expect(asJson.json).toMatchObject({ status: 400, detail: expect.stringContaining('events') });
    expect((await stack.request('GET', '/v1/sessions/stream-events')).status).toBe(404);
    const twice = await submitStreamed('stream-events', { code: 'pass' }, {}, '?events=stdout&events=stderr');
    expect(twice.status).toBe(400);
    expect((await stack.request('GET', '/v1/sessions/stream-events')).status).toBe(404);
    const onGet = await stack.request('GET', '/v1/executions/ex_0123456789abcdef01234567/events?events=nothing');
    expect(onGet.status).toBe(400);
  });
});
