import { KernelfleetConnectionError, KernelfleetError } from './errors';
import { HttpTransport, Outage, retryAfterMs } from './http';

/** Retry-After parsing, the retry budget of one outage, and the transport's retry rules. */

const problem = (status: number, extra: Record<string, unknown> = {}) =>
  new KernelfleetError({ type: `https://kernelfleet.dev/problems/s${status}`, title: `status ${status}`, status, ...extra });

describe('retryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delay-seconds', () => {
    expect(retryAfterMs('0', now)).toBe(0);
    expect(retryAfterMs('1', now)).toBe(1_000);
    expect(retryAfterMs(' 7 ', now)).toBe(7_000);
    expect(retryAfterMs('120', now)).toBe(120_000);
  });

  it('reads an HTTP date as the time until it, and a date past as 0', () => {
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
  });

  it('answers undefined when absent or unreadable (the caller then backs off on its own)', () => {
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('', now)).toBeUndefined();
    expect(retryAfterMs('   ', now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    // Date.parse takes these for dates in 2001: they must not become "retry at once".
    expect(retryAfterMs('1.5', now)).toBeUndefined();
    expect(retryAfterMs('-1', now)).toBeUndefined();
    expect(retryAfterMs('1e3', now)).toBeUndefined();
  });
});

describe('Outage', () => {
  const policy = (attempts: number, extra: { baseDelayMs?: number; maxDelayMs?: number } = {}) => ({
    attempts,
    baseDelayMs: extra.baseDelayMs ?? 1,
    maxDelayMs: extra.maxDelayMs ?? 1_000,
  });

  it('allows `attempts` failures, then throws KernelfleetConnectionError with the last failure as cause', async () => {
    const outage = new Outage(policy(2), 'following execution ex_1');
    await outage.failed(new Error('reset 1'), undefined);
    await outage.failed(new Error('reset 2'), undefined);
    const last = new Error('socket hang up');
    const thrown = await outage.failed(last, undefined).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(thrown).toBeInstanceOf(KernelfleetConnectionError);
    expect((thrown as Error).cause).toBe(last);
    expect((thrown as Error).message).toBe('following execution ex_1 failed 3 times: socket hang up');
  });

  it('starts a new budget after progress, so separate drops never add up', async () => {
    const outage = new Outage(policy(1), 'x');
    for (let i = 0; i < 5; i++) {
      await outage.failed(new Error(`drop ${i}`), undefined);
      outage.progressed();
    }
    await outage.failed(new Error('one more'), undefined);
    await expect(outage.failed(new Error('and another'), undefined)).rejects.toBeInstanceOf(KernelfleetConnectionError);
  });

  it('with attempts 0 throws at the first failure; a refusal of the api is thrown as it is', async () => {
    const refused = problem(429);
    await expect(new Outage(policy(0), 'x').failed(refused, 1)).rejects.toBe(refused);
    const network = new TypeError('fetch failed');
    const thrown = await new Outage(policy(0), 'POST /v1/x').failed(network, undefined).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(KernelfleetConnectionError);
    expect((thrown as Error).message).toBe('POST /v1/x failed once: fetch failed');
    expect((thrown as Error).cause).toBe(network);
  });

  it('throws at once, budget left or not, when Retry-After is longer than maxDelayMs', async () => {
    const outage = new Outage(policy(8, { maxDelayMs: 2_000 }), 'x');
    const refused = problem(503);
    const started = Date.now();
    await expect(outage.failed(refused, 60_000)).rejects.toBe(refused);
    await expect(outage.failed(new Error('down'), 2_001)).rejects.toBeInstanceOf(KernelfleetConnectionError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  describe('waits', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    /** Whether `promise` settled after advancing the fake clock by `ms`. */
    async function settledAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
      let settled = false;
      void promise.then(
        () => (settled = true),
        () => (settled = true),
      );
      await jest.advanceTimersByTimeAsync(ms);
      return settled;
    }

    it('waits the Retry-After when given, however small the backoff', async () => {
      const outage = new Outage(policy(3, { baseDelayMs: 10, maxDelayMs: 10_000 }), 'x');
      const waiting = outage.failed(problem(429), 3_000);
      expect(await settledAfter(waiting, 2_900)).toBe(false);
      expect(await settledAfter(waiting, 200)).toBe(true);
    });

    it('backs off exponentially with jitter when there is none: the n-th wait is ½–1 × baseDelayMs × 2ⁿ⁻¹', async () => {
      const outage = new Outage(policy(5, { baseDelayMs: 1_000, maxDelayMs: 60_000 }), 'x');
      expect(await settledAfter(outage.failed(new Error('1'), undefined), 1_000)).toBe(true);
      expect(await settledAfter(outage.failed(new Error('2'), undefined), 2_000)).toBe(true);
      const third = outage.failed(new Error('3'), undefined);
      expect(await settledAfter(third, 1_990)).toBe(false);
      expect(await settledAfter(third, 2_020)).toBe(true);
    });

    it('rejects with the signal’s reason when it aborts during a wait', async () => {
      const controller = new AbortController();
      const waiting = new Outage(policy(3, { maxDelayMs: 10_000 }), 'x').failed(problem(429), 5_000, controller.signal);
      const reason = new Error('user gave up');
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
    });
  });
});

describe('HttpTransport.request', () => {
  /** A fetch that answers each call with the next of `answers` (a Response, or an error to throw). */
  function scripted(answers: (Response | Error)[]) {
    const calls: { url: string; init: RequestInit }[] = [];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      const next = answers.shift();
      if (!next) throw new Error('no more answers scripted');
      if (next instanceof Error) throw next;
      return next;
    }) as unknown as typeof fetch;
    return { calls, fetchImpl };
  }
  const problemResponse = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify({ title: 'refused', status, ...body }), { status, headers: { 'content-type': 'application/problem+json', ...headers } });

  it('retries a 429 after its Retry-After and answers the success', async () => {
    const { calls, fetchImpl } = scripted([
      problemResponse(429, { type: 'https://kernelfleet.dev/problems/quota-exceeded' }, { 'retry-after': '0' }),
      problemResponse(429, { type: 'https://kernelfleet.dev/problems/quota-exceeded' }, { 'retry-after': '0' }),
      new Response('{"ok":1}', { status: 202 }),
    ]);
    const transport = new HttpTransport('http://api.test/', 'k1', fetchImpl, { baseDelayMs: 1 });
    const answer = await transport.json<{ ok: number }>('POST', '/v1/x', { body: { a: 1 }, idempotent: false });
    expect(answer).toEqual({ ok: 1 });
    expect(calls).toHaveLength(3);
    expect(calls[0].url).toBe('http://api.test/v1/x');
    expect(calls[0].init.headers).toMatchObject({ authorization: 'Bearer k1', 'content-type': 'application/json' });
    expect(calls[0].init.body).toBe('{"a":1}');
  });

  it('throws the 429 as a KernelfleetError with the problem’s fields when retries are off', async () => {
    const { calls, fetchImpl } = scripted([
      problemResponse(429, { type: 'https://kernelfleet.dev/problems/quota-exceeded', detail: 'pendingPerSession is full', quota: 'pendingPerSession', limit: 1 }, { 'retry-after': '1' }),
    ]);
    const transport = new HttpTransport('http://api.test', 'k1', fetchImpl, { attempts: 0 });
    const error = (await transport.request('POST', '/v1/x', { idempotent: true }).catch((e: unknown) => e)) as KernelfleetError;
    expect(error).toBeInstanceOf(KernelfleetError);
    expect(error).toMatchObject({ status: 429, type: 'https://kernelfleet.dev/problems/quota-exceeded', detail: 'pendingPerSession is full' });
    expect(error.problem).toMatchObject({ quota: 'pendingPerSession', limit: 1 });
    expect(calls).toHaveLength(1);
  });

  it('throws a 400 at once, naming the field', async () => {
    const { calls, fetchImpl } = scripted([
      problemResponse(400, { type: 'https://kernelfleet.dev/problems/validation', errors: [{ field: 'timeoutMs', message: 'must be positive' }] }),
    ]);
    const error = (await new HttpTransport('http://api.test', 'k', fetchImpl).request('POST', '/v1/x', { idempotent: true }).catch((e: unknown) => e)) as KernelfleetError;
    expect(error).toMatchObject({ status: 400, field: 'timeoutMs' });
    expect(error.message).toBe('400 refused (timeoutMs: must be positive)');
    expect(calls).toHaveLength(1);
  });

  it('retries a network error only for an idempotent request', async () => {
    const retried = scripted([new TypeError('fetch failed'), new Response('{}', { status: 200 })]);
    await expect(new HttpTransport('http://api.test', 'k', retried.fetchImpl, { baseDelayMs: 1 }).request('GET', '/v1/x', { idempotent: true })).resolves.toBeInstanceOf(Response);
    expect(retried.calls).toHaveLength(2);

    const once = scripted([new TypeError('fetch failed'), new Response('{}', { status: 200 })]);
    await expect(new HttpTransport('http://api.test', 'k', once.fetchImpl, { baseDelayMs: 1 }).request('POST', '/v1/x', { idempotent: false })).rejects.toThrow('fetch failed');
    expect(once.calls).toHaveLength(1);
  });

  it('gives a proxy’s non-JSON error page a problem of its own, and retries a 502 of an idempotent request', async () => {
    const { calls, fetchImpl } = scripted([
      new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
      new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    ]);
    const error = (await new HttpTransport('http://api.test', 'k', fetchImpl, { attempts: 1, baseDelayMs: 1 })
      .request('GET', '/v1/x', { idempotent: true })
      .catch((e: unknown) => e)) as KernelfleetError;
    expect(error).toBeInstanceOf(KernelfleetError);
    expect(error).toMatchObject({ status: 502, title: 'Bad Gateway', detail: '<html>bad gateway</html>' });
    expect(calls).toHaveLength(2);
  });
});
