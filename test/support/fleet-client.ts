import { randomBytes } from 'node:crypto';
import type { Execution, SubmitAccepted } from '@kernelfleet/contracts';

export const TEST_TENANT = 'acme';
export const OTHER_TENANT = 'globex';

/** A response read whole: status, headers, text and (when it is JSON) the parsed body. */
export async function readAnswer(res: Response): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * The HTTP side of a test fleet: two tenants' keys, the api replicas' URLs (the first is the
 * default), and the calls the tests make. The fleet itself is processes (Stack, test/support/
 * stack.ts) or containers (ContainerFleet, test/containers/support/container-fleet.ts).
 */
export class FleetClient {
  readonly apiKey = `key-${randomBytes(8).toString('hex')}`;
  readonly otherKey = `key-${randomBytes(8).toString('hex')}`;
  readonly urls: string[] = [];

  get url(): string {
    return this.urls[0];
  }

  headers(key = this.apiKey): Record<string, string> {
    return { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  }

  async request(method: string, path: string, body?: unknown, opts: { key?: string; url?: string; headers?: Record<string, string> } = {}) {
    const res = await fetch(`${opts.url ?? this.url}${path}`, {
      method,
      headers: { ...this.headers(opts.key), ...opts.headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return readAnswer(res);
  }

  async submit(sessionId: string, body: Record<string, unknown>, opts: { key?: string; url?: string } = {}): Promise<SubmitAccepted> {
    const res = await this.request('POST', `/v1/sessions/${sessionId}/executions`, body, opts);
    if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${res.text}`);
    return res.json as SubmitAccepted;
  }

  /** Submit with `?wait=true`; answers the terminal execution. */
  async run(sessionId: string, body: Record<string, unknown>, opts: { key?: string } = {}): Promise<Execution> {
    const res = await this.request('POST', `/v1/sessions/${sessionId}/executions?wait=true`, body, opts);
    if (res.status !== 200) throw new Error(`run answered ${res.status}: ${res.text}`);
    return res.json as Execution;
  }

  async get(executionId: string): Promise<Execution> {
    const res = await this.request('GET', `/v1/executions/${executionId}`);
    if (res.status !== 200) throw new Error(`get answered ${res.status}: ${res.text}`);
    return res.json as Execution;
  }

  /** Polls until the execution is terminal. */
  async settled(executionId: string, timeoutMs = 60_000): Promise<Execution> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const execution = await this.get(executionId);
      if (!['queued', 'running'].includes(execution.status)) return execution;
      if (Date.now() > until) throw new Error(`execution ${executionId} still ${execution.status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Polls until the execution's status is `status` (or one of them). */
  async waitForStatus(executionId: string, status: string | string[], timeoutMs = 30_000): Promise<void> {
    const wanted = new Set([status].flat());
    const until = Date.now() + timeoutMs;
    while (!wanted.has((await this.get(executionId)).status)) {
      if (Date.now() > until) throw new Error(`execution ${executionId} never became ${[...wanted].join(' or ')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
