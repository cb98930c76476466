import { KernelfleetConnectionError, KernelfleetError, problemOf } from './errors.js';

/** How the client retries what failed without an answer it must take as final. */
export interface RetryOptions {
  /**
   * Retries within one outage: a run of failures with no progress between them (network errors,
   * a dropped or silent stream, 429, 502, 503, 504). A stream that delivers an event starts a new
   * outage, so a long execution may survive any number of separate drops. 0 turns retries off.
   * Default 8.
   */
  attempts?: number;
  /** The first wait of an outage when the api gave no Retry-After; doubled each time (with jitter). Default 250. */
  baseDelayMs?: number;
  /** The longest single wait. A Retry-After longer than this is not waited out: the error is thrown. Default 30 000. */
  maxDelayMs?: number;
}

const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 8, baseDelayMs: 250, maxDelayMs: 30_000 };

/** Statuses that say "not now" rather than "no": retried. 502 and 504 come from proxies. */
export const RETRIED_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * The request may be sent again after a network error without changing its meaning (GET,
   * DELETE, cancel, a tool answer, a submit with an Idempotency-Key). Refusals the api answered
   * (429, 503) are retried either way: they changed nothing.
   */
  idempotent: boolean;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `Retry-After` in milliseconds (seconds or an HTTP date), or undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  const text = value?.trim() ?? '';
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its day and month. Date.parse alone takes '1.5' or '-1' for dates in 2001
  // (a wait of 0, so retries without a pause); such values are unreadable, not "now".
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The retry budget of one outage. `failed` waits before the next attempt, or throws once the
 * budget is spent; `progressed` ends the outage (the next failure starts a new budget).
 */
export class Outage {
  private failures = 0;

  constructor(
    private readonly policy: Required<RetryOptions>,
    private readonly what: string,
  ) {}

  progressed(): void {
    this.failures = 0;
  }

  /** `error` is thrown as it is once the budget is spent when it is a KernelfleetError, else wrapped. */
  async failed(error: unknown, retryAfter: number | undefined, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.failures += 1;
    const spent = this.failures > this.policy.attempts;
    const backoff = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2);
    const wait = retryAfter ?? backoff;
    if (spent || wait > this.policy.maxDelayMs) {
      if (error instanceof KernelfleetError) throw error;
      const tries = this.failures === 1 ? 'once' : `${this.failures} times`;
      throw new KernelfleetConnectionError(`${this.what} failed ${tries}: ${(error as Error)?.message ?? error}`, { cause: error });
    }
    await sleep(wait, signal);
  }
}

/** Whether `error` is the abort of `signal` (as opposed to a network failure). */
export function abortedBy(signal: AbortSignal | undefined, error: unknown): boolean {
  return signal?.aborted === true && (error === signal.reason || (error as Error)?.name === 'AbortError');
}

/**
 * Sends requests to the api with its key: answers the response when it is a success, retries
 * what may be retried (see {@link RetryOptions}), and throws a {@link KernelfleetError} carrying
 * the api's problem document otherwise.
 */
export class HttpTransport {
  readonly retry: Required<RetryOptions>;
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly apiKey: string,
    private readonly fetchImpl: typeof fetch,
    retry: RetryOptions = {},
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.retry = { ...DEFAULT_RETRY, ...retry };
  }

  outage(what: string): Outage {
    return new Outage(this.retry, what);
  }

  async request(method: string, path: string, opts: RequestOptions): Promise<Response> {
    const outage = this.outage(`${method} ${path}`);
    for (;;) {
      let res: Response;
      try {
        res = await this.send(method, path, opts);
      } catch (error) {
        if (abortedBy(opts.signal, error) || !opts.idempotent) throw error;
        await outage.failed(error, undefined, opts.signal);
        continue;
      }
      if (res.ok) return res;
      const problem = new KernelfleetError(await problemOf(res));
      // A 409 with Retry-After: an Idempotency-Key whose first request is still being accepted.
      const retried = RETRIED_STATUSES.has(res.status) || (res.status === 409 && res.headers.has('retry-after'));
      if (!retried || (res.status !== 429 && res.status !== 503 && !opts.idempotent)) throw problem;
      await outage.failed(problem, retryAfterMs(res.headers.get('retry-after')), opts.signal);
    }
  }

  async json<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    return (await (await this.request(method, path, opts)).json()) as T;
  }

  /** One attempt, no retry: the response whatever its status. */
  send(method: string, path: string, opts: Omit<RequestOptions, 'idempotent'>): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    return this.fetchImpl(`${this.base}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  }
}

/** A path segment: ids are `[A-Za-z0-9._:-]`, encoded anyway so a bad one reaches the api as a 400. */
export const seg = (id: string) => encodeURIComponent(id);
