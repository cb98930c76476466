import type { Execution } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';
import { readSse, type SseEvent } from '../support/sse-client';

jest.setTimeout(60_000);

/**
 * `GET /v1/executions/{id}/events` (DESIGN.md §4, invariant 8): every event exactly once, in
 * order, whenever the client attaches; resume with Last-Event-ID; keepalives; clean closes.
 */

/** Prints `count` numbered lines, sleeping between them, so output arrives over time. */
function printLoop(count: number, sleepSeconds: number, tag: string): string {
  return `import time\nfor i in range(${count}):\n    print('${tag}', i, flush=True)\n    time.sleep(${sleepSeconds})`;
}

function expectedLoopOutput(count: number, tag: string): string {
  return Array.from({ length: count }, (_, i) => `${tag} ${i}\n`).join('');
}

function ids(events: SseEvent[]): number[] {
  return events.map((e) => Number(e.id));
}

function stdoutText(events: SseEvent[]): string {
  return events
    .filter((e) => e.event === 'stdout')
    .map((e) => (JSON.parse(e.data) as { text: string }).text)
    .join('');
}

/** The full, well-formed event sequence of a finished execution: 1..n, queued … result. */
function expectCompleteSequence(events: SseEvent[], expectedStdout: string): void {
  expect(ids(events)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
  expect(events[0].event).toBe('queued');
  expect(events[1].event).toBe('started');
  expect(events[events.length - 1].event).toBe('result');
  expect(events.filter((e) => e.event === 'result')).toHaveLength(1);
  const middle = events.slice(2, -1).map((e) => e.event);
  expect(middle.every((type) => type === 'stdout')).toBe(true);
  expect(middle.length).toBeGreaterThan(0);
  expect(stdoutText(events)).toBe(expectedStdout);
}

describe('execution events over SSE', () => {
  let stack: Stack;
  const eventsUrl = (id: string) => `${stack.url}/v1/executions/${id}/events`;
  const auth = () => ({ authorization: `Bearer ${stack.apiKey}` });

  beforeAll(async () => {
    stack = await Stack.start();
    // Warm the kernels used below so timings are about streaming, not kernel start.
    await Promise.all(['sse-a', 'sse-b', 'sse-c', 'sse-d'].map((s) => stack.run(s, { code: 'pass' })));
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('attached before the start: queued, started, stdout…, result with ids 1..n, then the stream closes', async () => {
    const blocker = await stack.submit('sse-a', { code: 'import time; time.sleep(1.5)' });
    const target = await stack.submit('sse-a', { code: printLoop(5, 0.05, 'early') });
    const before = await stack.get(target.executionId);
    expect(before.status).toBe('queued');

    const began = Date.now();
    const read = await readSse(eventsUrl(target.executionId), auth(), undefined, 20_000);
    // readSse returns early only when the server closes the stream (after `result`).
    expect(Date.now() - began).toBeLessThan(15_000);
    expect(read.status).toBe(200);
    expect(read.contentType).toMatch(/^text\/event-stream/);
    expectCompleteSequence(read.events, expectedLoopOutput(5, 'early'));
    expect(JSON.parse(read.events[0].data)).toEqual({ seq: target.seq });
    const result = JSON.parse(read.events[read.events.length - 1].data) as Execution;
    expect(result.status).toBe('completed');
    expect(result.timings.startedAt!).toBeGreaterThanOrEqual((await stack.get(blocker.executionId)).timings.finishedAt!);
  });

  it('attached after completion: the same full replay; result data equals GET /v1/executions/{id}', async () => {
    const target = await stack.submit('sse-b', { code: printLoop(4, 0.02, 'late') });
    const live = await readSse(eventsUrl(target.executionId), auth());
    const finished = await stack.get(target.executionId);
    expect(finished.status).toBe('completed');

    const replay = await readSse(eventsUrl(target.executionId), auth());
    expect(replay.status).toBe(200);
    expectCompleteSequence(replay.events, expectedLoopOutput(4, 'late'));
    expect(replay.events).toEqual(live.events);
    expect(JSON.parse(replay.events[replay.events.length - 1].data)).toEqual(finished);
  });

  it('Last-Event-ID: k resumes with exactly the events after k', async () => {
    const target = await stack.submit('sse-b', { code: printLoop(6, 0.05, 'resume') });
    const full = await readSse(eventsUrl(target.executionId), auth());
    expect(full.events.length).toBeGreaterThanOrEqual(4);
    for (const k of [0, 1, 2, full.events.length - 1, full.events.length]) {
      const began = Date.now();
      const rest = await readSse(eventsUrl(target.executionId), { ...auth(), 'last-event-id': String(k) }, undefined, 10_000);
      expect(rest.status).toBe(200);
      expect(rest.events).toEqual(full.events.slice(k));
      // The execution is over: the stream ends by itself, even when nothing is left to send
      // (an EventSource reconnecting after `result` must not be left hanging).
      expect(Date.now() - began).toBeLessThan(5_000);
    }
  });

  it('a client that attaches mid-run, drops and reconnects with Last-Event-ID sees every event exactly once', async () => {
    const count = 30;
    const target = await stack.submit('sse-c', { code: printLoop(count, 0.05, 'mid') });
    await stack.waitForStatus(target.executionId, 'running');
    // Some output exists before the first client attaches.
    await new Promise((r) => setTimeout(r, 400));
    expect((await stack.get(target.executionId)).status).toBe('running');

    // First connection: attach mid-run, take a few events, drop the connection.
    const first = await readSse(eventsUrl(target.executionId), auth(), (events) => events.filter((e) => e.event === 'stdout').length >= 3);
    expect(first.events.some((e) => e.event === 'result')).toBe(false);
    expect((await stack.get(target.executionId)).status).toBe('running');

    // Second connection resumes after the last id the first one saw.
    const lastSeen = first.events[first.events.length - 1].id!;
    const second = await readSse(eventsUrl(target.executionId), { ...auth(), 'last-event-id': lastSeen });
    const all = [...first.events, ...second.events];
    expectCompleteSequence(all, expectedLoopOutput(count, 'mid'));

    // A third client attached mid-run from scratch also got everything exactly once.
    const replay = await readSse(eventsUrl(target.executionId), auth());
    expect(replay.events).toEqual(all);
  });

  it('a client attached from scratch while output flows gets every event exactly once', async () => {
    const count = 40;
    const target = await stack.submit('sse-d', { code: printLoop(count, 0.04, 'flow') });
    await stack.waitForStatus(target.executionId, 'running');
    // Attach at staggered moments while it prints; each must see the whole, gap-free sequence.
    const readers = [0, 300, 700, 1100].map(async (delay) => {
      await new Promise((r) => setTimeout(r, delay));
      const runningAtAttach = (await stack.get(target.executionId)).status === 'running';
      return { runningAtAttach, read: await readSse(eventsUrl(target.executionId), auth()) };
    });
    const results = await Promise.all(readers);
    expect(results.filter((r) => r.runningAtAttach).length).toBeGreaterThanOrEqual(2);
    for (const { read } of results) {
      expectCompleteSequence(read.events, expectedLoopOutput(count, 'flow'));
      expect(read.events).toEqual(results[0].read.events);
    }
  });

  it('sends keepalive comments while a running execution is silent', async () => {
    const target = await stack.submit('sse-a', { code: "import time; time.sleep(3.5); print('done')" });
    const read = await readSse(eventsUrl(target.executionId), auth());
    // SSE_KEEPALIVE_MS=1000 in the harness: a 3.5 s silence carries several comment lines.
    expect(read.comments).toBeGreaterThanOrEqual(3);
    expect(read.events.map((e) => e.event)).toEqual(['queued', 'started', 'stdout', 'result']);
    expect(stdoutText(read.events)).toBe('done\n');
  });

  it('answers 400 problem+json to a bad Last-Event-ID', async () => {
    const target = await stack.submit('sse-b', { code: 'pass' });
    for (const bad of ['abc', '-1', '1.5', '99999999999999']) {
      const res = await stack.request('GET', `/v1/executions/${target.executionId}/events`, undefined, {
        headers: { 'last-event-id': bad },
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.json).toMatchObject({ status: 400, type: expect.any(String), title: expect.any(String) });
      expect(res.json.detail).toMatch(/Last-Event-ID/);
    }
  });

  it('answers 404 problem+json for an unknown execution id', async () => {
    const res = await stack.request('GET', '/v1/executions/ex_doesnotexist0000/events');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 404, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  });
});
