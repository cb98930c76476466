import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { OTHER_TENANT, Stack, TEST_TENANT } from '../support/stack';
import { expectProblem, type Answer } from '../support/problem-assertions';
import { connectTestRedis, keysMatching } from '../support/redis-client';

jest.setTimeout(90_000);

/**
 * Tenant quotas (DESIGN.md §4, docs/quotas.md): a full quota answers 429 problem+json naming the
 * quota and its limit, with Retry-After, and enqueues nothing (no seq taken, no lane entry, no
 * job); the tenant submits again once its load is gone; one tenant's override leaves others alone.
 */

const ROOT = join(__dirname, '..', '..');
const SLEEP = 'import time\ntime.sleep(60)';

describe('tenant quotas', () => {
  let stack: Stack;
  let redis: Redis | Cluster;

  beforeAll(async () => {
    stack = await Stack.start({ apis: 2 });
    redis = connectTestRedis();
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  /** The quotas CLI, compiled like the apps, against the stack's Redis and prefix. */
  function quotas(...args: string[]): string {
    return execFileSync(process.execPath, ['-r', join(ROOT, 'scripts', 'paths.js'), join(ROOT, 'dist', 'apps', 'cli', 'src', 'main.js'), 'quotas', ...args], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: process.env.KF_TEST_REDIS_URL!, KEY_PREFIX: stack.prefix },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  const post = (session: string, body: Record<string, unknown>, opts: { key?: string; url?: string; headers?: Record<string, string> } = {}) =>
    stack.request('POST', `/v1/sessions/${session}/executions`, body, opts);

  function expectQuota(res: Answer, quota: string, limit: number): void {
    expectProblem(res, 429);
    expect(res.json).toMatchObject({ type: 'https://kernelfleet.dev/problems/quota-exceeded', quota, limit });
    expect(res.json.detail).toContain(quota);
    expect(res.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
  }

  /** What Redis holds for a session of the test tenant: its lane and its seq counter. */
  async function sessionState(session: string, tenant = TEST_TENANT) {
    const tag = `${stack.prefix}:{${tenant}/${session}}`;
    const [lane, seq] = await Promise.all([redis.lrange(`${tag}:lane`, 0, -1), redis.get(`${tag}:seq`)]);
    return { lane, seq };
  }

  /** Every BullMQ job id of the stack (any queue, any state). */
  async function jobIds(): Promise<Set<string>> {
    const keys = await keysMatching(redis, `${stack.prefix}:bull:*`);
    const ids = keys.map((k) => /^.*:bull:\{[^}]+\}:[^:]+:([^:]+)$/.exec(k)?.[1]).filter((id): id is string => !!id && id.startsWith('ex_'));
    return new Set(ids);
  }

  /** Ends everything pending in the session: queued ones cancelled, the running one interrupted. */
  async function drain(session: string, running: string, key?: string): Promise<void> {
    await stack.request('POST', `/v1/sessions/${session}/cancel-pending`, undefined, { key });
    await stack.request('POST', `/v1/executions/${running}/cancel`, undefined, { key });
    const until = Date.now() + 30_000;
    while (!['cancelled', 'completed'].includes((await stack.request('GET', `/v1/executions/${running}`, undefined, { key })).json.status)) {
      if (Date.now() > until) throw new Error(`${running} did not end`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  afterEach(() => {
    quotas('clear', TEST_TENANT);
    quotas('clear', OTHER_TENANT);
  });

  it('pending per session: 429 with nothing enqueued, on either api at once; the session takes work again once it drains', async () => {
    expect(quotas('set', TEST_TENANT, 'pendingPerSession=3')).toMatch(/pendingPerSession\s+3 \(override 3\)/);
    const head = await stack.submit('per-session', { code: SLEEP, timeoutMs: 90_000 });
    await stack.waitForStatus(head.executionId, 'running');
    const jobsBefore = await jobIds();
    // 10 submissions at once across both api processes: exactly two more fit.
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post('per-session', { code: `print(${i})` }, { url: stack.urls[i % 2] })),
    );
    expect(answers.filter((a) => a.status === 202)).toHaveLength(2);
    for (const refused of answers.filter((a) => a.status !== 202)) expectQuota(refused, 'pendingPerSession', 3);
    const state = await sessionState('per-session');
    expect(state.lane).toHaveLength(3);
    expect(state.seq).toBe('3');
    expect((await stack.request('GET', '/v1/sessions/per-session')).json.pending).toBe(3);
    expect(await jobIds()).toEqual(jobsBefore);

    // The other tenant is not bound by this tenant's override.
    const other = await Promise.all([0, 1, 2, 3].map(() => post('per-session', { code: SLEEP, timeoutMs: 90_000 }, { key: stack.otherKey })));
    expect(other.map((a) => a.status)).toEqual([202, 202, 202, 202]);

    await drain('per-session', head.executionId);
    const again = await stack.submit('per-session', { code: '1+1' });
    expect(again.seq).toBe(4);
    expect((await stack.settled(again.executionId)).status).toBe('completed');
    await drain('per-session', other[0].json.executionId, stack.otherKey);
  });

  it('pending per tenant: a new session refused leaves no trace in Redis; the tenant submits again afterwards', async () => {
    quotas('set', TEST_TENANT, 'pendingPerTenant=2');
    const a = await stack.submit('tenant-a', { code: SLEEP, timeoutMs: 90_000 });
    const b = await stack.submit('tenant-b', { code: SLEEP, timeoutMs: 90_000 });
    const refused = await post('tenant-c', { code: '1+1' });
    expectQuota(refused, 'pendingPerTenant', 2);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await keysMatching(redis, `${stack.prefix}:{${TEST_TENANT}/tenant-c}*`)).toEqual([]);
    expect((await stack.request('GET', '/v1/sessions/tenant-c')).status).toBe(404);
    expectQuota(await post('tenant-a', { code: '1+1' }), 'pendingPerTenant', 2);

    await drain('tenant-a', a.executionId);
    const c = await stack.submit('tenant-c', { code: '1+1' });
    expect(c.seq).toBe(1);
    expect((await stack.settled(c.executionId)).status).toBe('completed');
    await drain('tenant-b', b.executionId);
  });

  it('live sessions: a session with pending work may queue more, a new one waits until a session has nothing pending', async () => {
    quotas('set', TEST_TENANT, 'liveSessions=1');
    const a = await stack.submit('live-a', { code: SLEEP, timeoutMs: 90_000 });
    const more = await stack.submit('live-a', { code: '1+1' });
    expectQuota(await post('live-b', { code: '1+1' }), 'liveSessions', 1);
    expect(await sessionState('live-b')).toEqual({ lane: [], seq: null });
    // globex has no override: its sessions are not counted with acme's.
    expect((await post('live-b', { code: '1+1' }, { key: stack.otherKey })).status).toBe(202);

    await drain('live-a', a.executionId);
    expect((await stack.settled(more.executionId)).status).toBe('cancelled');
    const b = await stack.submit('live-b', { code: '1+1' });
    expect((await stack.settled(b.executionId)).status).toBe('completed');
  });

  it('submissions per second: a burst passes, the next is 429 with Retry-After, and after it a submission passes', async () => {
    quotas('set', TEST_TENANT, 'submitsPerSecond=1', 'submitBurst=3');
    const answers: Answer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await post('rate', { code: '1+1' }));
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([202, 202, 202]);
    expectQuota(answers[3], 'submitsPerSecond', 1);
    expect((await sessionState('rate')).seq).toBe('3');
    expect((await post('rate', { code: '1+1' }, { key: stack.otherKey })).status).toBe(202);

    await new Promise((r) => setTimeout(r, Number(answers[3].headers.get('retry-after')) * 1_000 + 100));
    const later = await post('rate', { code: '1+1' });
    expect(later.status).toBe(202);
    expect(later.json.seq).toBe(4);
  });

  it('an Idempotency-Key refused by a quota is not spent: the same key is accepted once there is room', async () => {
    quotas('set', TEST_TENANT, 'pendingPerSession=1');
    const head = await stack.submit('idem', { code: SLEEP, timeoutMs: 90_000 });
    const headers = { 'idempotency-key': 'quota-key-1' };
    expectQuota(await post('idem', { code: '2+2' }, { headers }), 'pendingPerSession', 1);
    await drain('idem', head.executionId);
    const accepted = await post('idem', { code: '2+2' }, { headers });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('idempotent-replayed')).toBeNull();
    expect((await stack.settled(accepted.json.executionId)).status).toBe('completed');
  });

  it('code size and maximum timeout overrides lower this tenant\'s limits only (413 / 400 naming the quota; waiting would not help)', async () => {
    quotas('set', TEST_TENANT, 'maxCodeBytes=100', 'maxTimeoutMs=5000');
    const code = `x = '${'a'.repeat(100)}'`;
    const big = await post('static', { code });
    expectProblem(big, 413, /maxCodeBytes/);
    expect(big.json).toMatchObject({ quota: 'maxCodeBytes', limit: 100 });
    expect(big.headers.get('retry-after')).toBeNull();
    const slow = await post('static', { code: '1', timeoutMs: 6_000 });
    expectProblem(slow, 400, /timeoutMs/);
    expect(slow.json).toMatchObject({ quota: 'maxTimeoutMs', limit: 5_000, errors: [{ field: 'timeoutMs' }] });
    expect(await sessionState('static')).toEqual({ lane: [], seq: null });
    // Without a timeout the default (30 s) is capped at the tenant's maximum.
    const capped = await stack.submit('static', { code: '1' });
    const execution = await stack.settled(capped.executionId);
    expect(execution.timings.deadlineAt - execution.timings.acceptedAt).toBe(5_000);
    // The other tenant keeps the defaults.
    expect((await post('static', { code, timeoutMs: 6_000 }, { key: stack.otherKey })).status).toBe(202);
  });

  it('the CLI shows overrides and usage, clears them, and refuses unknown names', () => {
    quotas('set', TEST_TENANT, 'pendingPerTenant=7');
    const shown = quotas('show', TEST_TENANT);
    expect(shown).toMatch(/pendingPerTenant\s+7 \(override 7\)/);
    expect(shown).toMatch(/liveSessions\s+1000 \(default\)/);
    expect(shown).toMatch(/usage: \d+ pending execution\(s\), \d+ live session\(s\)/);
    expect(quotas('clear', TEST_TENANT)).toMatch(/pendingPerTenant\s+10000 \(default\)/);
    expect(() => quotas('set', TEST_TENANT, 'bogus=1')).toThrow(/known quota name/);
    expect(() => quotas('set', TEST_TENANT, 'liveSessions=0')).toThrow(/positive integer/);
  });
});
