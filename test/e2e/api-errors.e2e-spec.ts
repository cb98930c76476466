import type { Execution } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';
import { expectProblem, type Answer } from '../support/problem-assertions';

jest.setTimeout(60_000);

/**
 * Bad credentials get a 401 and change nothing; tenant isolation (invariant 9). Every error is an
 * RFC 9457 application/problem+json document. The catalogue of malformed requests (invariant 12)
 * is bad-input.e2e-spec.ts.
 */

/** The problem with one id replaced by a placeholder, to compare two 404s. */
function normalised(res: Answer, id: string): unknown {
  return { status: res.status, contentType: res.headers.get('content-type'), body: JSON.parse(res.text.split(id).join('<id>')) };
}

describe('credentials and tenant isolation', () => {
  let stack: Stack;
  /** Every session id a rejected request named; none may exist afterwards. */
  const touched = new Set<string>();

  beforeAll(async () => {
    stack = await Stack.start();
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

  it('created nothing for the requests it refused, and still serves', async () => {
    for (const session of touched) expectProblem(await stack.request('GET', `/v1/sessions/${session}`), 404);
    const execution: Execution = await stack.run('auth-victim', { code: 'print(6 * 7)' });
    expect(execution).toMatchObject({ status: 'completed', seq: 1, result: { output: '42\n' } });
  });
});
