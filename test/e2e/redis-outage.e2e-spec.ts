import type { Execution } from '@kernelfleet/contracts';
import { expectProblem } from '../support/problem-assertions';
import { TestRedis } from '../support/redis-server';
import { readSse } from '../support/sse-client';
import { readAnswer, Stack } from '../support/stack';

/**
 * Redis crashes (SIGKILL) with work in flight and comes back from its append-only file. The
 * lease (3 s) is shorter than the outage, so every lease has expired when Redis returns.
 */
const LEASE_MS = '3000';
/** "Answers instead of hanging": generous, far above the api's own bound. */
const ANSWER_WITHIN_MS = 5_000;
const OUTAGE_MS = 6_000;

describe('a Redis outage', () => {
  let redis: TestRedis;
  let stack: Stack;

  beforeAll(async () => {
    redis = await TestRedis.startDurable();
    const env = { REDIS_URL: redis.url, WORKER_LEASE_MS: LEASE_MS };
    stack = await Stack.start({ workers: 2, apiEnv: env, workerEnv: { ...env, KERNEL_POOL_SIZE: '0' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await redis?.destroy();
  });

  /** A request that must answer (whatever it answers) within ANSWER_WITHIN_MS. */
  async function answered(method: string, path: string, body?: unknown) {
    const started = Date.now();
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: stack.headers(),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
    });
    return { ...(await readAnswer(res)), ms: Date.now() - started };
  }

  it('answers 503 while Redis is down; afterwards every accepted execution completes on the kernel it had', async () => {
    const sessions = ['out-a', 'out-b', 'out-c', 'out-d'];
    // Each session gets a kernel holding some state before the outage.
    const before = await Promise.all(sessions.map((s, i) => stack.run(s, { code: `x = ${(i + 1) * 100}` })));
    for (const run of before) expect(run).toMatchObject({ status: 'completed', kernel: { generation: 1 } });

    // Per session: one running a sleep through the outage, two queued behind it.
    const expected = new Map<string, { session: string; output: string }>();
    const running: string[] = [];
    for (const [i, session] of sessions.entries()) {
      const sleeper = await stack.submit(session, {
        code: `import time\nprint('start', flush=True)\ntime.sleep(2.5)\nx += 1\nprint('slept', x)`,
        timeoutMs: 120_000,
      });
      running.push(sleeper.executionId);
      expected.set(sleeper.executionId, { session, output: `start\nslept ${(i + 1) * 100 + 1}\n` });
      for (let k = 1; k <= 2; k++) {
        const queued = await stack.submit(session, { code: `x += ${k}\nprint(x)`, timeoutMs: 120_000 });
        const value = (i + 1) * 100 + 1 + (k === 1 ? 1 : 3);
        expected.set(queued.executionId, { session, output: `${value}\n` });
      }
    }
    // A client waiting for a result and one following a stream, both across the outage.
    const waiting = fetch(`${stack.url}/v1/sessions/out-e/executions?wait=true`, {
      method: 'POST',
      headers: stack.headers(),
      body: JSON.stringify({ code: `import time\ntime.sleep(2)\nprint('waited')`, timeoutMs: 120_000 }),
    }).then(async (res) => ({ status: res.status, json: (await res.json()) as Execution }));
    const followed = readSse(
      `${stack.url}/v1/executions/${running[0]}/events`,
      stack.headers(),
      (events) => events.some((e) => e.event === 'result'),
      120_000,
    );
    for (const id of running) await stack.waitForStatus(id, 'running');

    await redis.stop();
    const downAt = Date.now();

    const submit = await answered('POST', '/v1/sessions/out-a/executions', { code: 'print(1)' });
    expectProblem(submit, 503);
    expect(submit.headers.get('retry-after')).toBe('1');
    const get = await answered('GET', `/v1/executions/${running[0]}`);
    expectProblem(get, 503);
    const ready = await answered('GET', '/health/ready');
    expectProblem(ready, 503);
    expect((await answered('GET', '/health/live')).status).toBe(200);
    console.log(`while Redis was down: submit answered 503 in ${submit.ms} ms, get in ${get.ms} ms, ready in ${ready.ms} ms`);

    // The sleeps end meanwhile: their results and output wait in the workers.
    await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - downAt)));
    await redis.restart();
    const upAt = Date.now();
    // The api reconnects by itself (its backoff is at most 1 s) and says so on its readiness probe.
    while ((await answered('GET', '/health/ready')).status !== 200) {
      if (Date.now() - upAt > 30_000) throw new Error('the api did not become ready again');
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`the api was ready again ${Date.now() - upAt} ms after Redis came back`);

    const results = new Map<string, Execution>();
    for (const id of expected.keys()) results.set(id, await stack.settled(id, 90_000));
    console.log(`after Redis came back: all ${expected.size} executions ended within ${Date.now() - upAt} ms`);
    for (const [id, { session, output }] of expected) {
      const home = before[sessions.indexOf(session)].kernel!.workerId;
      expect({ id, ...pick(results.get(id)!) }).toEqual({
        id,
        status: 'completed',
        output,
        kernel: { workerId: home, generation: 1, stateLost: false, restarted: false },
      });
    }

    const waited = await waiting;
    expect(waited.status).toBe(200);
    expect(waited.json).toMatchObject({ status: 'completed', result: { output: 'waited\n' } });

    const stream = await followed;
    expect(stream.status).toBe(200);
    expect(stream.events.map((e) => Number(e.id))).toEqual(stream.events.map((_, i) => i + 1));
    expect(stream.events[stream.events.length - 1].event).toBe('result');
    const text = stream.events.filter((e) => e.event === 'stdout').map((e) => (JSON.parse(e.data) as { text: string }).text);
    expect(text.join('')).toBe(expected.get(running[0])!.output);

    // The kernels still hold their state.
    const after = await Promise.all(sessions.map((s) => stack.run(s, { code: 'print(x)' })));
    after.forEach((run, i) => {
      expect(run.result?.output).toBe(`${(i + 1) * 100 + 4}\n`);
      expect(run.kernel).toMatchObject({ workerId: before[i].kernel!.workerId, generation: 1, stateLost: false });
    });
  });
});

function pick(execution: Execution) {
  return { status: execution.status, output: execution.result?.output, kernel: execution.kernel };
}
