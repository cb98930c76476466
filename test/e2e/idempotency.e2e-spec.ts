import { createHash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Execution, SubmitAccepted } from '@kernelfleet/contracts';
import { Stack, TEST_TENANT } from '../support/stack';
import { expectProblem } from '../support/problem-assertions';
import { connectTestRedis } from '../support/redis-client';

jest.setTimeout(60_000);

/**
 * `Idempotency-Key` on `POST /v1/sessions/{id}/executions` (DESIGN.md §4, §5): the same key and
 * request answer the same execution, which runs once; the key with another request is refused.
 */


/** Adds one to a global and prints it: the printed value counts how often the code ran. */
const COUNT = "counter = globals().get('counter', 0) + 1\nprint(counter)";

const newKey = () => `key-${randomBytes(6).toString('hex')}`;

describe('Idempotency-Key', () => {
  let stack: Stack;
  let redis: Redis | Cluster;
  beforeAll(async () => {
    stack = await Stack.start();
    redis = connectTestRedis();
  }, 90_000);
  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  function post(session: string, body: unknown, key: string | undefined, opts: { query?: string; tenantKey?: string } = {}) {
    return stack.request('POST', `/v1/sessions/${session}/executions${opts.query ?? ''}`, body, {
      key: opts.tenantKey,
      headers: key === undefined ? {} : { 'idempotency-key': key },
    });
  }

  /** How many times COUNT ran in the session, and the seq of the execution that asked. */
  async function counted(session: string, tenantKey?: string): Promise<{ count: string | undefined; seq: number }> {
    const probe = await stack.run(session, { code: "print(globals().get('counter'))" }, { key: tenantKey });
    return { count: probe.result?.output, seq: probe.seq };
  }

  it('the same key and body twice answer the same execution, and the code runs once', async () => {
    const key = newKey();
    const first = await post('twice', { code: COUNT, timeoutMs: 20_000 }, key);
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // Same request, fields in another order.
    const again = await post('twice', { timeoutMs: 20_000, code: COUNT }, key);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json).toMatchObject({ executionId: first.json.executionId, sessionId: 'twice', seq: first.json.seq });

    const done = await stack.settled(first.json.executionId);
    expect(done.result?.output).toBe('1\n');
    // Once it has ended, a repeat answers its current status.
    const later = await post('twice', { code: COUNT, timeoutMs: 20_000 }, key);
    expect(later.status).toBe(202);
    expect(later.json).toEqual({ executionId: first.json.executionId, sessionId: 'twice', seq: first.json.seq, status: 'completed' });
    expect(await counted('twice')).toEqual({ count: '1\n', seq: first.json.seq + 1 });
  });

  it('ten concurrent identical requests create one execution', async () => {
    const key = newKey();
    const answers = await Promise.all(Array.from({ length: 10 }, () => post('burst', { code: COUNT }, key)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));
    const accepted = answers.map((a) => a.json as SubmitAccepted);
    expect(new Set(accepted.map((a) => a.executionId)).size).toBe(1);
    expect(new Set(accepted.map((a) => a.seq))).toEqual(new Set([1]));
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === null)).toHaveLength(1);

    expect((await stack.settled(accepted[0].executionId)).status).toBe('completed');
    expect(await counted('burst')).toEqual({ count: '1\n', seq: 2 });
  });

  it('the same key with another body or session answers 422 and enqueues nothing', async () => {
    const key = newKey();
    const first = await post('reused', { code: COUNT }, key);
    expect(first.status).toBe(202);
    await stack.settled(first.json.executionId);

    const otherBody = await post('reused', { code: 'counter = 100' }, key);
    expectProblem(otherBody, 422, /Idempotency-Key/);
    expect(otherBody.json.type).toMatch(/unprocessable/);
    expectProblem(await post('reused', { code: COUNT, reset: true }, key), 422);
    expectProblem(await post('reused-elsewhere', { code: COUNT }, key), 422);
    expectProblem(await post('reused-elsewhere', { code: COUNT }, key, { query: '?wait=true' }), 422);

    expectProblem(await stack.request('GET', '/v1/sessions/reused-elsewhere'), 404);
    expect(await counted('reused')).toEqual({ count: '1\n', seq: 2 });
  });

  it('tenants use the same key independently', async () => {
    const key = newKey();
    const ours = await post('tenants', { code: COUNT }, key);
    const theirs = await post('tenants', { code: COUNT }, key, { tenantKey: stack.otherKey });
    expect([ours.status, theirs.status]).toEqual([202, 202]);
    expect(theirs.json.executionId).not.toBe(ours.json.executionId);
    expect([ours.json.seq, theirs.json.seq]).toEqual([1, 1]);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();

    expect(await counted('tenants')).toEqual({ count: '1\n', seq: 2 });
    expect(await counted('tenants', stack.otherKey)).toEqual({ count: '1\n', seq: 2 });
  });

  it('a malformed key answers 400 problem+json naming Idempotency-Key and enqueues nothing', async () => {
    for (const bad of ['', 'k'.repeat(256), 'caf\u00e9', 'tab\tinside']) {
      const res = await post('bad-key', { code: COUNT }, bad);
      expectProblem(res, 400, /Idempotency-Key/);
      expect(res.json.errors).toEqual([{ field: 'Idempotency-Key', message: expect.any(String) }]);
    }
    expectProblem(await stack.request('GET', '/v1/sessions/bad-key'), 404);
    // The longest and the widest valid keys are taken.
    expect((await post('good-key', { code: 'pass' }, 'k'.repeat(255))).status).toBe(202);
    expect((await post('good-key', { code: 'pass' }, ' !"#$%&\'(){}/~')).status).toBe(202);
  });

  it('wait=true with a repeated key answers the terminal execution', async () => {
    const key = newKey();
    const first = await post('waited', { code: "import time\ntime.sleep(0.3)\nprint('hello')" }, key);
    expect(first.status).toBe(202);
    // Repeated while it still runs: waits for it.
    const waited = await post('waited', { code: "import time\ntime.sleep(0.3)\nprint('hello')" }, key, { query: '?wait=true' });
    expect(waited.status).toBe(200);
    const execution = waited.json as Execution;
    expect(execution).toMatchObject({ executionId: first.json.executionId, seq: first.json.seq, status: 'completed' });
    expect(execution.result?.output).toBe('hello\n');
    // Repeated after the end: the same document at once.
    const again = await post('waited', { code: "import time\ntime.sleep(0.3)\nprint('hello')" }, key, { query: '?wait=true' });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(execution);
  });

  it('a claim left pending answers 409 (retry); once stale, the next request takes it over and runs it once', async () => {
    const key = newKey();
    const first = await post('stalled', { code: COUNT }, key);
    await stack.settled(first.json.executionId);
    // Make the key look like an api claimed it and stalled before accepting (see
    // docs/architecture.md, Idempotency keys): pending (no seq), naming an execution that does not exist.
    const redisKey = `${stack.prefix}:idem:{${TEST_TENANT}/${createHash('sha256').update(key).digest('hex')}}`;
    const record = JSON.parse((await redis.get(redisKey))!);
    const claimedId = `ex_${randomBytes(12).toString('hex')}`;
    delete record.seq;
    await redis.set(redisKey, JSON.stringify({ ...record, executionId: claimedId, claimedAt: Date.now() }), 'KEEPTTL');

    const started = Date.now();
    const busy = await post('stalled', { code: COUNT }, key);
    expectProblem(busy, 409, /retry/);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);

    await redis.set(redisKey, JSON.stringify({ ...record, executionId: claimedId, claimedAt: Date.now() - 60_000 }), 'KEEPTTL');
    const [takeover, concurrent] = await Promise.all([post('stalled', { code: COUNT }, key), post('stalled', { code: COUNT }, key)]);
    expect([takeover.json.executionId, concurrent.json.executionId]).toEqual([claimedId, claimedId]);
    expect(takeover.json.seq).toBe(concurrent.json.seq);
    expect((await stack.settled(claimedId)).result?.output).toBe('2\n');
    expect(await counted('stalled')).toEqual({ count: '2\n', seq: 3 });
    expect(await redis.ttl(redisKey)).toBeGreaterThan(0);
  });
});
