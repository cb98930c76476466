import type { Execution } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';
import { expectProblem, type Answer } from '../support/problem-assertions';

jest.setTimeout(60_000);

/**
 * Bad input gets a clear error and changes nothing (invariant 12); tenant isolation (invariant
 * 9). Every error is an RFC 9457 application/problem+json document.
 */


const MAX_CODE_BYTES = 1000;

/** The problem with one id replaced by a placeholder, to compare two 404s. */
function normalised(res: Answer, id: string): unknown {
  return { status: res.status, contentType: res.headers.get('content-type'), body: JSON.parse(res.text.split(id).join('<id>')) };
}

describe('api errors', () => {
  let stack: Stack;
  /** Every session id a rejected request named; none may exist afterwards. */
  const touched = new Set<string>();

  const post = (session: string, body: unknown, opts: { headers?: Record<string, string>; query?: string } = {}) => {
    touched.add(session);
    return stack.request('POST', `/v1/sessions/${session}/executions${opts.query ?? ''}`, body, { headers: opts.headers });
  };

  beforeAll(async () => {
    stack = await Stack.start({ apiEnv: { MAX_CODE_BYTES: String(MAX_CODE_BYTES) } });
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  describe('authentication', () => {
    it.each([
      ['no Authorization header', undefined],
      ['an unknown key', 'Bearer key-not-a-real-one-0000'],
      ['an empty bearer', 'Bearer '],
      ['another scheme', `Basic ${Buffer.from('acme:secret').toString('base64')}`],
    ])('answers 401 problem+json with %s', async (_label, authorization) => {
      const headers = { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) };
      for (const [method, path, body] of [
        ['POST', '/v1/sessions/auth-victim/executions', JSON.stringify({ code: 'print(1)' })],
        ['GET', '/v1/executions/ex_000000000000000000000000', undefined],
        ['GET', '/v1/sessions/auth-victim', undefined],
        ['DELETE', '/v1/sessions/auth-victim', undefined],
      ] as const) {
        const res = await fetch(`${stack.url}${path}`, { method, headers, body });
        const text = await res.text();
        const answer: Answer = { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
        expectProblem(answer, 401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      touched.add('auth-victim');
    });
  });

  describe('tenant isolation', () => {
    it("another tenant's execution answers 404 exactly like an unknown id, and is left alone", async () => {
      const unknownId = 'ex_ffffffffffffffffffffffff';
      // One with an artifact (so its owner gets a 200 there), one still running (to cancel).
      const big = await stack.run('iso', { code: "for i in range(1000):\n    print('y' * 99)" });
      expect(big.result?.artifactId).toBeDefined();
      expect((await stack.request('GET', `/v1/executions/${big.executionId}/artifact`)).status).toBe(200);
      const running = await stack.submit('iso', { code: 'import time\ntime.sleep(1.5)\nprint("still mine")' });
      await stack.waitForStatus(running.executionId, 'running');

      for (const id of [big.executionId, running.executionId]) {
        for (const [method, suffix] of [
          ['GET', ''],
          ['GET', '/events'],
          ['GET', '/artifact'],
          ['POST', '/cancel'],
        ] as const) {
          const theirs = await stack.request(method, `/v1/executions/${id}${suffix}`, undefined, { key: stack.otherKey });
          const unknown = await stack.request(method, `/v1/executions/${unknownId}${suffix}`, undefined, { key: stack.otherKey });
          expectProblem(theirs, 404);
          expect(normalised(theirs, id)).toEqual(normalised(unknown, unknownId));
        }
      }
      // Their sessions do not exist either, for any session call.
      for (const [method, path] of [
        ['GET', '/v1/sessions/iso'],
        ['POST', '/v1/sessions/iso/cancel-pending'],
        ['DELETE', '/v1/sessions/iso'],
      ] as const) {
        const theirs = await stack.request(method, path, undefined, { key: stack.otherKey });
        const unknown = await stack.request(method, path.replace('iso', 'iso-unknown'), undefined, { key: stack.otherKey });
        expectProblem(theirs, 404);
        expect(normalised(theirs, 'iso')).toEqual(normalised(unknown, 'iso-unknown'));
      }
      touched.add('iso-unknown');

      // The cancel did nothing: the execution ran to the end.
      const ended = await stack.settled(running.executionId);
      expect(ended.status).toBe('completed');
      expect(ended.result?.output).toBe('still mine\n');
      // The same session id under the other tenant is a different session, starting at seq 1.
      const other = await stack.run('iso', { code: "print('other tenant')" }, { key: stack.otherKey });
      expect(other.seq).toBe(1);
      expect(other.result?.output).toBe('other tenant\n');
      expect((await stack.request('GET', '/v1/sessions/iso')).json.pending).toBe(0);
    });
  });

  describe('bad requests change nothing', () => {
    it('answers 400 to malformed JSON', async () => {
      expectProblem(await post('bad-json', '{"code": "print(1)"'), 400, /JSON/);
      expectProblem(await post('bad-json', "{'code': 'print(1)'}"), 400, /JSON/);
      expectProblem(await post('bad-json', ''), 400);
    });

    it.each([
      ['an array', '[{"code":"print(1)"}]'],
      ['a string', '"print(1)"'],
      ['a number', '42'],
      ['null', 'null'],
    ])('answers 400 to a body that is %s', async (_label, body) => {
      expectProblem(await post('bad-shape', body), 400, /body/);
    });

    it('answers 400 naming an unknown field', async () => {
      const res = await post('bad-field', { code: 'print(1)', timeoutMS: 1000 });
      expectProblem(res, 400, /timeoutMS/);
    });

    it.each([
      ['a number', 42],
      ['an array', ['print(1)']],
      ['null', null],
      ['missing', undefined],
    ])('answers 400 naming `code` when code is %s', async (_label, code) => {
      const res = await post('bad-code', code === undefined ? { timeoutMs: 1000 } : { code });
      expectProblem(res, 400, /\bcode\b/);
      expect(res.json.errors?.map((e: { field: string }) => e.field)).toContain('code');
    });

    it('answers 400 to empty code', async () => {
      expectProblem(await post('bad-code', { code: '' }), 400, /\bcode\b/);
    });

    it('answers 413 to code over MAX_CODE_BYTES, and accepts code right at it', async () => {
      const over = `# ${'x'.repeat(MAX_CODE_BYTES)}`;
      expectProblem(await post('big-code', { code: over }), 413, new RegExp(String(MAX_CODE_BYTES)));
      // Multi-byte characters count as bytes, not characters.
      expectProblem(await post('big-code', { code: `# ${'é'.repeat(MAX_CODE_BYTES / 2)}` }), 413);
      const atLimit = `x=1#${'x'.repeat(MAX_CODE_BYTES - 4)}`;
      expect(Buffer.byteLength(atLimit)).toBe(MAX_CODE_BYTES);
      const ok = await stack.run('code-at-limit', { code: atLimit });
      expect(ok.status).toBe('completed');
      expect(ok.seq).toBe(1);
    });

    it('answers 413 to a body over the body limit', async () => {
      const res = await post('big-body', { code: 'print(1)', padding: 'p'.repeat(512 * 1024) });
      expectProblem(res, 413);
    });

    it.each([
      ['a space', 'has%20space'],
      ['129 characters', 's'.repeat(129)],
      ['a slash', 'a%2Fb'],
      ['braces', '%7Bx%7D'],
    ])('answers 400 to a session id with %s', async (_label, session) => {
      const res = await stack.request('POST', `/v1/sessions/${session}/executions`, { code: 'print(1)' });
      expectProblem(res, 400, /sessionId/);
      expectProblem(await stack.request('GET', `/v1/sessions/${session}`), 400, /sessionId/);
    });

    it('accepts a session id of exactly 128 characters of the allowed alphabet', async () => {
      const session = `Aa0._:-${'s'.repeat(121)}`;
      expect(session).toHaveLength(128);
      const ok = await stack.run(session, { code: "print('ok')" });
      expect(ok.status).toBe('completed');
      expect(ok.sessionId).toBe(session);
    });

    it.each([
      ['0', 0],
      ['negative', -5],
      ['a string', 'abc'],
      ['not an integer', 1.5],
      ['over the maximum', 600_001],
    ])('answers 400 naming timeoutMs when it is %s', async (_label, timeoutMs) => {
      expectProblem(await post('bad-timeout', { code: 'print(1)', timeoutMs }), 400, /timeoutMs/);
    });

    it('answers 400 to a deadlineAt in the past (or not a number)', async () => {
      expectProblem(await post('bad-deadline', { code: 'print(1)', deadlineAt: Date.now() - 1_000 }), 400, /deadlineAt/);
      expectProblem(await post('bad-deadline', { code: 'print(1)', deadlineAt: 'tomorrow' }), 400, /deadlineAt/);
    });

    it('answers 400 naming the field for other wrong types', async () => {
      expectProblem(await post('bad-types', { code: 'print(1)', reset: 'yes' }), 400, /reset/);
      expectProblem(await post('bad-types', { code: 'print(1)', kernelMode: 'forever' }), 400, /kernelMode/);
      expectProblem(await post('bad-types', { code: 'print(1)', ownerId: 'no spaces allowed' }), 400, /ownerId/);
      expectProblem(await post('bad-types', { code: 'print(1)', retryOnKernelLoss: 1 }), 400, /retryOnKernelLoss/);
    });

    it('answers 415 to a body that is not application/json', async () => {
      expectProblem(await post('bad-type', 'print(1)', { headers: { 'content-type': 'text/plain' } }), 415);
      expectProblem(
        await post('bad-type', 'code=print(1)', { headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
        415,
      );
      // JSON in a charset the api cannot decode is a media-type problem, not malformed JSON.
      expectProblem(
        await post('bad-type', '{"code":"print(1)"}', { headers: { 'content-type': 'application/json; charset=latin1' } }),
        415,
      );
    });

    it('answers 400 to ?wait=maybe', async () => {
      expectProblem(await post('bad-wait', { code: 'print(1)' }, { query: '?wait=maybe' }), 400, /wait/);
    });

    it('answers 404 problem+json to an unknown route', async () => {
      expectProblem(await stack.request('GET', '/v1/nothing-here'), 404);
      expectProblem(await stack.request('POST', '/v2/sessions/x/executions', { code: 'print(1)' }), 404);
      expectProblem(await stack.request('GET', '/v1/executions/ex_000000000000000000000000/nope'), 404);
    });

    it('answers 400 to a malformed execution id', async () => {
      expectProblem(await stack.request('GET', '/v1/executions/has%20space'), 400, /executionId/);
      expectProblem(await stack.request('GET', `/v1/executions/${'e'.repeat(129)}`), 400, /executionId/);
    });

    it('still serves afterwards, and none of the rejected requests created a session or an execution', async () => {
      const execution: Execution = await stack.run('after-errors', { code: 'print(6 * 7)' });
      expect(execution.status).toBe('completed');
      expect(execution.result?.output).toBe('42\n');

      expect(touched.size).toBeGreaterThan(5);
      for (const session of touched) expectProblem(await stack.request('GET', `/v1/sessions/${session}`), 404);
      // A session that only ever saw rejected requests starts at seq 1.
      const first = await stack.run('bad-code', { code: 'print(1)' });
      expect(first.seq).toBe(1);
    });
  });
});
