import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { ApiKeyInfo, CreatedApiKey, Execution } from '@kernelfleet/contracts';
import { OTHER_TENANT, readAnswer, Stack, TEST_TENANT } from '../support/stack';
import { expectProblem, type Answer } from '../support/problem-assertions';
import { TestRedis } from '../support/redis-server';
import { connectTestRedis, keysMatching } from '../support/redis-client';

jest.setTimeout(90_000);

/**
 * Tenants (DESIGN.md §2 invariant 9, docs/tenants.md): API keys stored hashed in Redis, made and
 * revoked with the keys CLI or the /admin endpoints; tenant B's credentials on tenant A's ids
 * answer what unknown ids answer and change nothing; one session id in two tenants is two
 * kernels. api-errors.e2e-spec.ts covers the basic 401s and the 404 comparison for executions.
 */

const ROOT = join(__dirname, '..', '..');
const ADMIN_KEY = `admin-${randomBytes(24).toString('hex')}`;

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The compiled `kernelfleet keys` (what `npm run keys` runs after building) against a Redis and prefix. */
function keysCli(args: string[], env: { redisUrl: string; prefix: string }): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', join(ROOT, 'scripts', 'paths.js'), join(ROOT, 'dist', 'apps', 'cli', 'src', 'main.js'), 'keys', ...args],
      { cwd: ROOT, env: { ...process.env, REDIS_URL: env.redisUrl, KEY_PREFIX: env.prefix } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** keyId and key from `keys create` output. */
function createdBy(run: CliRun): { keyId: string; key: string } {
  expect(run).toMatchObject({ code: 0 });
  const keyId = /^keyId\s+(\S+)$/m.exec(run.stdout)?.[1];
  const key = /^key\s+(\S+)$/m.exec(run.stdout)?.[1];
  expect(keyId).toMatch(/^[0-9a-f]{16}$/);
  expect(key).toMatch(new RegExp(`^kf_${keyId}_[A-Za-z0-9_-]{43}$`));
  return { keyId: keyId!, key: key! };
}

/** The answer with one id replaced by a placeholder, to compare two 404s. */
function normalised(res: Answer, id: string): unknown {
  return { status: res.status, contentType: res.headers.get('content-type'), body: JSON.parse(res.text.split(id).join('<id>')) };
}

function expectUnauthorized(res: Answer): void {
  expectProblem(res, 401);
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
}

async function bare(url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return readAnswer(await fetch(url, { method, headers, body }));
}

describe('tenants', () => {
  let stack: Stack;
  let redis: Redis | Cluster;
  const testRedis = () => ({ redisUrl: process.env.KF_TEST_REDIS_URL!, prefix: stack.prefix });
  const admin = (method: string, path: string, body?: unknown, url?: string) =>
    stack.request(method, path, body, { key: ADMIN_KEY, url });

  /** Every tenant call, on the ids given (GET execution, events, artifact, cancel, sessions, owners). */
  const tenantCalls = (executionId: string, sessionId: string, ownerId: string): [string, string][] => [
    ['GET', `/v1/executions/${executionId}`],
    ['GET', `/v1/executions/${executionId}/events`],
    ['GET', `/v1/executions/${executionId}/artifact`],
    ['POST', `/v1/executions/${executionId}/cancel`],
    ['GET', `/v1/sessions/${sessionId}`],
    ['POST', `/v1/sessions/${sessionId}/cancel-pending`],
    ['DELETE', `/v1/sessions/${sessionId}`],
    ['DELETE', `/v1/owners/${ownerId}`],
  ];

  /** Runs code with `?wait=true` through one api replica. */
  async function runOn(url: string, key: string, sessionId: string, code: string): Promise<Execution> {
    const res = await stack.request('POST', `/v1/sessions/${sessionId}/executions?wait=true`, { code }, { key, url });
    expect(res.status).toBe(200);
    return res.json as Execution;
  }

  /** Polls until the key is refused on that replica (the cache bound), then checks the 401. */
  async function refusedOn(url: string, key: string): Promise<void> {
    const until = Date.now() + 20_000;
    let res = await stack.request('GET', '/v1/sessions/probe', undefined, { key, url });
    while (res.status !== 401 && Date.now() < until) {
      expect(res.status).toBe(404); // authenticated: the session just does not exist
      await new Promise((r) => setTimeout(r, 250));
      res = await stack.request('GET', '/v1/sessions/probe', undefined, { key, url });
    }
    expectUnauthorized(res);
  }

  beforeAll(async () => {
    stack = await Stack.start({ apis: 2, apiEnv: { ADMIN_KEY } });
    redis = connectTestRedis();
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  describe('stored keys', () => {
    it('a key made with the CLI is stored as its SHA-256 only, works on every replica, and is refused once revoked', async () => {
      const { keyId, key } = createdBy(await keysCli(['create', TEST_TENANT, '--label', 'e2e cli'], testRedis()));

      // Redis holds the digest, never the key.
      const stored = await redis.hgetall(`${stack.prefix}:{apikeys}:key:${keyId}`);
      expect(stored).toMatchObject({ tenant: TEST_TENANT, label: 'e2e cli', digest: createHash('sha256').update(key).digest('hex') });
      const secret = key.slice(-43);
      for (const redisKey of await keysMatching(redis, `${stack.prefix}:*`)) {
        const type = await redis.type(redisKey);
        const value = type === 'hash' ? JSON.stringify(await redis.hgetall(redisKey)) : type === 'string' ? await redis.get(redisKey) : '';
        expect(`${redisKey} ${value}`).not.toContain(secret);
      }

      // The listing shows id, tenant and label; never the key or its digest.
      const listed = await keysCli(['list', TEST_TENANT], testRedis());
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(new RegExp(`^${keyId}\\s+${TEST_TENANT}\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+e2e cli$`, 'm'));
      expect(listed.stdout).not.toContain(secret);
      expect(listed.stdout).not.toContain(stored.digest);
      expect((await keysCli(['list', OTHER_TENANT], testRedis())).stdout).not.toContain(keyId);

      // The key is the tenant's: it sees what the env key of the same tenant made.
      const made = await stack.run('stored-key', { code: 'shared_with_env_key = 5' });
      for (const url of stack.urls) {
        const seen = await runOn(url, key, 'stored-key', 'print(shared_with_env_key)');
        expect(seen.result?.output).toBe('5\n');
        expect((await stack.request('GET', `/v1/executions/${made.executionId}`, undefined, { key, url })).status).toBe(200);
      }

      const revoked = await keysCli(['revoke', keyId], testRedis());
      expect(revoked).toMatchObject({ code: 0, stdout: expect.stringContaining(`revoked ${keyId}`) });
      for (const url of stack.urls) await refusedOn(url, key);
      expect((await keysCli(['list'], testRedis())).stdout).not.toContain(keyId);
      expect(await redis.exists(`${stack.prefix}:{apikeys}:key:${keyId}`)).toBe(0);

      const again = await keysCli(['revoke', keyId], testRedis());
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/no key with id/);
    });

    it('the CLI refuses bad arguments with its usage and a non-zero exit, changing nothing', async () => {
      const before = await keysCli(['list'], testRedis());
      for (const args of [[], ['create'], ['create', 'acme/other'], ['create', 'acme', '--label'], ['revoke', 'nope'], ['list', 'a b'], ['rotate']]) {
        const run = await keysCli(args, testRedis());
        expect({ args, code: run.code }).toEqual({ args, code: 2 });
        expect(run.stderr).toMatch(/^keys: .+\n\nusage: kernelfleet keys/);
        expect(run.stdout).toBe('');
      }
      const badPrefix = await keysCli(['list'], { redisUrl: testRedis().redisUrl, prefix: 'Not A Prefix' });
      expect(badPrefix.code).toBe(2);
      expect(badPrefix.stderr).toMatch(/KEY_PREFIX/);
      expect((await keysCli(['list'], testRedis())).stdout).toBe(before.stdout);
    });

    it('the admin endpoints create, list and revoke keys; a revoked key is refused at once here and within the bound elsewhere', async () => {
      const created = await admin('POST', '/admin/keys', { tenant: OTHER_TENANT, label: 'made by admin' });
      expect(created.status).toBe(201);
      const key = created.json as CreatedApiKey;
      expect(key).toEqual({
        keyId: expect.stringMatching(/^[0-9a-f]{16}$/),
        tenant: OTHER_TENANT,
        label: 'made by admin',
        createdAt: expect.any(Number),
        key: expect.stringMatching(/^kf_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/),
      });
      const unlabelled = (await admin('POST', '/admin/keys', { tenant: TEST_TENANT })).json as CreatedApiKey;
      expect(unlabelled.label).toBe('');

      for (const url of stack.urls) {
        const ran = await runOn(url, key.key, 'admin-made', 'print("globex here")');
        expect(ran.result?.output).toBe('globex here\n');
      }

      const ofOther = await admin('GET', `/admin/keys?tenant=${OTHER_TENANT}`);
      expect(ofOther.status).toBe(200);
      expect(ofOther.json.keys).toContainEqual({ keyId: key.keyId, tenant: OTHER_TENANT, label: 'made by admin', createdAt: key.createdAt });
      expect((ofOther.json.keys as ApiKeyInfo[]).every((k) => k.tenant === OTHER_TENANT)).toBe(true);
      const all = await admin('GET', '/admin/keys');
      expect((all.json.keys as ApiKeyInfo[]).map((k) => k.keyId)).toEqual(expect.arrayContaining([key.keyId, unlabelled.keyId]));
      for (const listing of [ofOther, all]) {
        expect(listing.text).not.toContain(key.key.slice(-43));
        expect(listing.text).not.toContain(createHash('sha256').update(key.key).digest('hex'));
        expect(listing.text).not.toMatch(/"(key|digest)"/);
      }

      const revoked = await admin('DELETE', `/admin/keys/${key.keyId}`);
      expect(revoked.status).toBe(200);
      expect(revoked.json).toEqual({ keyId: key.keyId, tenant: OTHER_TENANT, label: 'made by admin', createdAt: key.createdAt });
      // The replica that revoked it forgets it at once; the other one within API_KEY_CACHE_MS.
      expectUnauthorized(await stack.request('GET', '/v1/sessions/admin-made', undefined, { key: key.key, url: stack.urls[0] }));
      await refusedOn(stack.urls[1], key.key);
      expectProblem(await admin('DELETE', `/admin/keys/${key.keyId}`), 404);
      expect(((await admin('GET', '/admin/keys')).json.keys as ApiKeyInfo[]).map((k) => k.keyId)).not.toContain(key.keyId);
    });

    it('the admin endpoints take only ADMIN_KEY: no tenant key, env or stored, and the admin key is no tenant key', async () => {
      const stored = (await admin('POST', '/admin/keys', { tenant: TEST_TENANT, label: 'not admin' })).json as CreatedApiKey;
      const calls: [string, string, unknown][] = [
        ['POST', '/admin/keys', { tenant: TEST_TENANT }],
        ['GET', '/admin/keys', undefined],
        ['DELETE', `/admin/keys/${stored.keyId}`, undefined],
      ];
      for (const [method, path, body] of calls) {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const json = { 'content-type': 'application/json' };
        expectUnauthorized(await bare(`${stack.url}${path}`, method, json, payload));
        for (const key of [stack.apiKey, stack.otherKey, stored.key, `${ADMIN_KEY}x`, ADMIN_KEY.slice(0, -1)]) {
          expectUnauthorized(await bare(`${stack.url}${path}`, method, { ...json, authorization: `Bearer ${key}` }, payload));
        }
      }
      expectUnauthorized(await stack.request('GET', '/v1/sessions/x', undefined, { key: ADMIN_KEY }));
      // Nothing was created or revoked by the refused calls.
      const keys = ((await admin('GET', `/admin/keys?tenant=${TEST_TENANT}`)).json.keys as ApiKeyInfo[]).map((k) => k.keyId);
      expect(keys).toContain(stored.keyId);
      expect((await stack.request('GET', '/v1/sessions/x', undefined, { key: stored.key })).status).toBe(404);
    });

    it('the admin endpoints answer 400 naming the field for bad input, and create nothing', async () => {
      const before = (await admin('GET', '/admin/keys')).json.keys as ApiKeyInfo[];
      expectProblem(await admin('POST', '/admin/keys', { tenant: 'acme/evil' }), 400, /tenant/);
      expectProblem(await admin('POST', '/admin/keys', { tenant: 'x'.repeat(65) }), 400, /tenant/);
      expectProblem(await admin('POST', '/admin/keys', {}), 400, /tenant/);
      expectProblem(await admin('POST', '/admin/keys', { tenant: 'acme', label: 7 }), 400, /label/);
      expectProblem(await admin('POST', '/admin/keys', { tenant: 'acme', label: 'x'.repeat(101) }), 400, /label/);
      expectProblem(await admin('POST', '/admin/keys', { tenant: 'acme', role: 'admin' }), 400, /role/);
      expectProblem(await admin('POST', '/admin/keys', [{ tenant: 'acme' }]), 400, /body/);
      expectProblem(await admin('GET', '/admin/keys?tenant=a%2Fb'), 400, /tenant/);
      expectProblem(await admin('DELETE', '/admin/keys/not-a-key-id'), 400, /keyId/);
      expectProblem(await admin('DELETE', '/admin/keys/0000000000000000'), 404);
      expect((await admin('GET', '/admin/keys')).json.keys).toEqual(before);
    });
  });

  describe('authentication', () => {
    it('answers 401 problem+json with WWW-Authenticate on every tenant call for missing, malformed and unknown credentials', async () => {
      const known = (await admin('POST', '/admin/keys', { tenant: TEST_TENANT })).json as CreatedApiKey;
      const authorizations: [string, string | undefined][] = [
        ['no header', undefined],
        ['a bare scheme', 'Bearer'],
        ['two tokens', `Bearer ${stack.apiKey} ${stack.apiKey}`],
        ['a token in the wrong scheme', `Token ${stack.apiKey}`],
        ['the key without a scheme', stack.apiKey],
        ['an env key with one character more', `Bearer ${stack.apiKey}x`],
        ['an unknown stored-looking key', `Bearer kf_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`],
        ['a known key id with a forged secret', `Bearer kf_${known.keyId}_${randomBytes(32).toString('base64url')}`],
        ['a known key cut short', `Bearer ${known.key.slice(0, -1)}`],
      ];
      const calls: [string, string][] = [
        ['POST', '/v1/sessions/auth-probe/executions'],
        ...tenantCalls('ex_000000000000000000000000', 'auth-probe', 'auth-owner'),
      ];
      for (const [label, authorization] of authorizations) {
        for (const [method, path] of calls) {
          const headers: Record<string, string> = { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) };
          const res = await bare(`${stack.url}${path}`, method, headers, method === 'POST' ? '{"code":"print(1)"}' : undefined);
          try {
            expectUnauthorized(res);
          } catch (error) {
            throw new Error(`${label}: ${method} ${path} answered ${res.status} ${res.text}\n${error}`);
          }
        }
      }
      // None of them ran anything.
      expectProblem(await stack.request('GET', '/v1/sessions/auth-probe'), 404);
    });
  });

  describe('isolation', () => {
    it("tenant B's credentials on tenant A's ids answer exactly what unknown ids answer, and change nothing", async () => {
      // B authenticates with a stored key, A with its env key.
      const b = ((await admin('POST', '/admin/keys', { tenant: OTHER_TENANT, label: 'isolation' })).json as CreatedApiKey).key;
      const set = await stack.run('iso-a', { code: 'x = 1', ownerId: 'alice' });
      const big = await stack.run('iso-a', { code: "for i in range(1000):\n    print('y' * 99)", ownerId: 'alice' });
      expect(big.result?.artifactId).toBeDefined();
      const running = await stack.submit('iso-a', { code: 'import time\ntime.sleep(3)\nprint("still mine")', ownerId: 'alice' });
      await stack.waitForStatus(running.executionId, 'running');
      const queued = await stack.submit('iso-a', { code: 'print(x)', ownerId: 'alice' });
      const sessionBefore = (await stack.request('GET', '/v1/sessions/iso-a')).json;
      expect(sessionBefore.pending).toBe(2);

      const unknown = { executionId: 'ex_ffffffffffffffffffffffff', sessionId: 'iso-nobody', ownerId: 'nobody' };
      for (const executionId of [set.executionId, big.executionId, running.executionId, queued.executionId]) {
        const theirs = tenantCalls(executionId, 'iso-a', 'alice');
        const none = tenantCalls(unknown.executionId, unknown.sessionId, unknown.ownerId);
        for (let i = 0; i < theirs.length; i++) {
          const [method, path] = theirs[i];
          const answer = await stack.request(method, path, undefined, { key: b });
          const baseline = await stack.request(none[i][0], none[i][1], undefined, { key: b });
          expectProblem(answer, 404);
          const hide = (res: Answer, ids: string[]) => ids.reduce((text, id) => text.split(id).join('<id>'), res.text);
          expect({ method, status: answer.status, type: answer.headers.get('content-type'), body: hide(answer, [executionId, 'iso-a', 'alice']) }).toEqual({
            method,
            status: baseline.status,
            type: baseline.headers.get('content-type'),
            body: hide(baseline, [unknown.executionId, unknown.sessionId, unknown.ownerId]),
          });
        }
      }

      // A's work is intact: the running one finished, the queued one ran on the same kernel.
      const ranOn = await stack.settled(running.executionId);
      expect(ranOn).toMatchObject({ status: 'completed', result: { output: 'still mine\n' } });
      const next = await stack.settled(queued.executionId);
      expect(next).toMatchObject({ status: 'completed', result: { output: '1\n' }, kernel: { restarted: false, stateLost: false } });
      expect(next.kernel?.generation).toBe(set.kernel?.generation);
      expect((await stack.request('GET', `/v1/executions/${big.executionId}/artifact`)).status).toBe(200);
      const sessionAfter = (await stack.request('GET', '/v1/sessions/iso-a')).json;
      expect(sessionAfter).toMatchObject({ pending: 0, owners: ['alice'], kernel: { generation: sessionBefore.kernel.generation } });
    });

    it('the same session id in two tenants is two kernels, with their own state and working directories', async () => {
      const where = 'import os\nprint(os.getcwd())';
      const a = await stack.run('twin', { code: `x = 1\nopen('mine.txt', 'w').write('a')\n${where}` });
      const b = await stack.run(
        'twin',
        { code: `print(globals().get('x', 'undefined'))\nimport os\nprint(os.path.exists('mine.txt'))\n${where}` },
        { key: stack.otherKey },
      );
      expect([a.status, b.status]).toEqual(['completed', 'completed']);
      expect(a.seq).toBe(1);
      expect(b.seq).toBe(1);
      const [bX, bSeesFile, bDir] = b.result!.output.trimEnd().split('\n');
      expect([bX, bSeesFile]).toEqual(['undefined', 'False']);
      const aDir = a.result!.output.trimEnd();
      expect(aDir).not.toBe(bDir);
      expect(aDir).toMatch(new RegExp(`/${TEST_TENANT}/twin$`));
      expect(bDir).toMatch(new RegExp(`/${OTHER_TENANT}/twin$`));

      const undefinedInB = await stack.run('twin', { code: 'print(x)' }, { key: stack.otherKey });
      expect(undefinedInB).toMatchObject({ status: 'failed', result: { exitCode: 1, output: expect.stringContaining('NameError') } });
      await stack.run('twin', { code: 'x = 2' }, { key: stack.otherKey });
      // A's x is its own: still 1 after B set one of its own, on the kernel A started.
      const again = await stack.run('twin', { code: 'print(x)' });
      expect(again).toMatchObject({ result: { output: '1\n' }, kernel: { restarted: false, generation: a.kernel?.generation } });
    });
  });
});

describe('tenants, with their own Redis and no ADMIN_KEY', () => {
  let own: TestRedis;
  let ownStopped = false;
  let stack: Stack;

  beforeAll(async () => {
    own = await TestRedis.start();
    stack = await Stack.start({ workers: 0, apiEnv: { REDIS_URL: own.url, API_KEY_CACHE_MS: '0' } });
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
    // TestRedis.stop() waits for an exit that already happened when called twice: stop it once.
    if (!ownStopped) await own?.stop();
  });

  it('has no /admin endpoints: they answer exactly what an unknown route answers, whatever the credentials', async () => {
    for (const [method, path] of [
      ['POST', '/admin/keys'],
      ['GET', '/admin/keys'],
      ['GET', '/admin/keys?tenant=acme'],
      ['DELETE', '/admin/keys/0123456789abcdef'],
    ]) {
      for (const key of [stack.apiKey, ADMIN_KEY]) {
        const answer = await stack.request(method, path, method === 'POST' ? { tenant: 'acme' } : undefined, { key });
        const unknownPath = path.replace('/admin/keys', '/admin/nothing-here');
        const unknown = await stack.request(method, unknownPath, method === 'POST' ? { tenant: 'acme' } : undefined, { key });
        expectProblem(answer, 404);
        // The detail names the path without its query.
        expect(normalised(answer, path.split('?')[0])).toEqual(normalised(unknown, unknownPath.split('?')[0]));
      }
    }
  });

  it('answers 503 problem+json, not 401, to a valid stored key while Redis is unreachable', async () => {
    const { key } = createdBy(await keysCli(['create', TEST_TENANT], { redisUrl: own.url, prefix: stack.prefix }));
    expectProblem(await stack.request('GET', '/v1/sessions/before-outage', undefined, { key }), 404);
    await own.stop();
    ownStopped = true;
    const during = await stack.request('GET', '/v1/sessions/during-outage', undefined, { key });
    expectProblem(during, 503);
    expect(during.headers.get('retry-after')).toBe('1');
    expect(during.headers.get('www-authenticate')).toBeNull();
  });
});
