import OpenAPISchemaValidator from 'openapi-schema-validator';
import { AppModule } from '../../apps/api/src/app.module';
import { controllerRoutes } from '../../apps/api/src/openapi/route-table';
import { parseMetrics, samplesOf, valueOf, type MetricSample } from '../support/metrics-text';
import { readSse } from '../support/sse-client';
import { readAnswer, Stack, TEST_TENANT } from '../support/stack';

/** Polls `probe` until it returns a value `accept` takes (or throws after `timeoutMs`). */
async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > until) throw new Error(`never as expected: ${JSON.stringify(value).slice(0, 2_000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function scrape(url: string): Promise<MetricSample[]> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
  return parseMetrics(await res.text());
}

/** Every non-empty line of a process's output, parsed; fails on a line that is not a JSON object. */
function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`not a JSON object: ${line}`);
      return parsed as Record<string, unknown>;
    });
}

const TERMINAL = { tenant: TEST_TENANT };
/** A short lease: the failover test waits for a lost worker to be reaped. */
const LEASE_MS = '2000';
/**
 * info: the worker logs a line per finished execution (the Stack's default is warn). A generous
 * kernel start: the machine is shared with other test runs.
 */
const WORKER_ENV = { LOG_LEVEL: 'info', WORKER_LEASE_MS: LEASE_MS, KERNEL_START_MAX_MS: '30000' };

describe('metrics, JSON logs and the OpenAPI document', () => {
  let stack: Stack;
  const api = () => `${stack.url}/metrics`;
  const worker = () => stack.workers[0].metricsUrl!;

  beforeAll(async () => {
    stack = await Stack.start({ workerEnv: WORKER_ENV, apiEnv: { WORKER_LEASE_MS: LEASE_MS } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('counts an execution once, by tenant and status, on the worker that ran it, with its queue wait and run time', async () => {
    const completed = { ...TERMINAL, status: 'completed' };
    const before = await scrape(worker());
    const runsBefore = valueOf(before, 'kernelfleet_execution_run_duration_seconds_count', completed) ?? 0;
    const done = await stack.run('obs-count', { code: 'print(6*7)' });
    expect({ status: done.status, output: done.result?.output }).toEqual({ status: 'completed', output: '42\n' });

    const after = await eventually(
      () => scrape(worker()),
      (s) => (valueOf(s, 'kernelfleet_executions_total', completed) ?? 0) > (valueOf(before, 'kernelfleet_executions_total', completed) ?? 0),
    );
    expect(valueOf(after, 'kernelfleet_executions_total', completed)).toBe((valueOf(before, 'kernelfleet_executions_total', completed) ?? 0) + 1);
    // Histograms: one more observation each, the +Inf bucket holding all of them.
    expect(valueOf(after, 'kernelfleet_execution_run_duration_seconds_count', completed)).toBe(runsBefore + 1);
    const waits = valueOf(after, 'kernelfleet_execution_queue_wait_seconds_count', TERMINAL);
    expect(waits).toBeGreaterThanOrEqual(1);
    expect(valueOf(after, 'kernelfleet_execution_queue_wait_seconds_bucket', { ...TERMINAL, le: '+Inf' })).toBe(waits);
    expect(samplesOf(after, 'kernelfleet_execution_run_duration_seconds_bucket', completed).length).toBeGreaterThan(10);
    // The api wrote no terminal state of it: summed over the fleet it counts once.
    const apiSide = await scrape(api());
    expect(valueOf(apiSide, 'kernelfleet_executions_total', completed) ?? 0).toBe(0);
    expect(valueOf(apiSide, 'kernelfleet_executions_accepted_total', TERMINAL)).toBeGreaterThanOrEqual(1);

    // Kernels by state, sessions held, failover and cull counters, default process metrics.
    expect(valueOf(after, 'kernelfleet_kernels', { state: 'session' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(after, 'kernelfleet_kernels', { state: 'pool' })).toBeDefined();
    expect(valueOf(after, 'kernelfleet_kernels', { state: 'starting' })).toBeDefined();
    expect(valueOf(after, 'kernelfleet_sessions_held')).toBeGreaterThanOrEqual(1);
    for (const name of [
      'kernelfleet_kernels_culled_total',
      'kernelfleet_workers_reaped_total',
      'kernelfleet_sessions_rehomed_total',
      'kernelfleet_executions_recovered_total',
      'kernelfleet_executions_running',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect({ name, present: valueOf(after, name) !== undefined }).toEqual({ name, present: true });
    }
    // Label values are tenants, statuses and states: never execution or session ids.
    const text = await (await fetch(worker())).text();
    expect(text).not.toContain(done.executionId);
    expect(text).not.toContain('obs-count');
  });

  it('counts a queued execution the api cancels on the api, live SSE clients, and queue depth by state', async () => {
    const cancelled = { ...TERMINAL, status: 'cancelled' };
    const [apiBefore, workerBefore] = await Promise.all([scrape(api()), scrape(worker())]);
    const acceptedBefore = valueOf(apiBefore, 'kernelfleet_executions_accepted_total', TERMINAL) ?? 0;
    const running = await stack.submit('obs-cancel', { code: 'import time\ntime.sleep(60)', timeoutMs: 90_000 });
    const queued = await stack.submit('obs-cancel', { code: 'print("never")' });
    await stack.waitForStatus(running.executionId, 'running');

    // The running head is an active BullMQ job; the api reports every queue's depth by state.
    const depths = await eventually(
      () => scrape(api()),
      (s) => samplesOf(s, 'kernelfleet_queue_jobs', { state: 'active' }).some((x) => x.value >= 1),
    );
    expect(samplesOf(depths, 'kernelfleet_queue_jobs', { queue: 'kf-shared' }).map((s) => s.labels.state).sort()).toEqual(
      ['active', 'delayed', 'failed', 'paused', 'prioritized', 'waiting'],
    );
    expect(samplesOf(depths, 'kernelfleet_queue_jobs', { queue: `kf-worker-${stack.workers[0].name}`, state: 'waiting' })).toHaveLength(1);
    expect(valueOf(await scrape(worker()), 'kernelfleet_executions_running')).toBe(1);

    // One SSE client while a stream is open, none once it closed.
    const stream = new AbortController();
    const res = await fetch(`${stack.url}/v1/executions/${running.executionId}/events`, { headers: stack.headers(), signal: stream.signal });
    expect(res.status).toBe(200);
    await eventually(() => scrape(api()), (s) => valueOf(s, 'kernelfleet_sse_clients') === 1);
    stream.abort();
    await res.body?.cancel().catch(() => undefined);
    await eventually(() => scrape(api()), (s) => valueOf(s, 'kernelfleet_sse_clients') === 0);

    // Queued: the api writes `cancelled`. Running: the worker does.
    expect((await stack.request('POST', `/v1/executions/${queued.executionId}/cancel`)).status).toBe(202);
    expect((await stack.request('POST', `/v1/executions/${running.executionId}/cancel`)).status).toBe(202);
    expect((await stack.settled(running.executionId)).status).toBe('cancelled');
    const apiAfter = await scrape(api());
    expect(valueOf(apiAfter, 'kernelfleet_executions_total', cancelled)).toBe((valueOf(apiBefore, 'kernelfleet_executions_total', cancelled) ?? 0) + 1);
    expect(valueOf(apiAfter, 'kernelfleet_executions_accepted_total', TERMINAL)).toBe(acceptedBefore + 2);
    const workerAfter = await eventually(
      () => scrape(worker()),
      (s) => (valueOf(s, 'kernelfleet_executions_total', cancelled) ?? 0) > (valueOf(workerBefore, 'kernelfleet_executions_total', cancelled) ?? 0),
    );
    expect(valueOf(workerAfter, 'kernelfleet_executions_total', cancelled)).toBe((valueOf(workerBefore, 'kernelfleet_executions_total', cancelled) ?? 0) + 1);
  });

  it('logs JSON lines: every worker line names the worker, an execution\'s line its ids', async () => {
    const done = await stack.run('obs-logs', { code: 'print("logged")' });
    expect({ status: done.status, output: done.result?.output }).toEqual({ status: 'completed', output: 'logged\n' });
    const proc = stack.workers[0];
    const lines = await eventually(
      async () => jsonLines(proc.output),
      (all) => all.some((l) => l.executionId === done.executionId),
    );
    for (const line of lines) {
      expect(line).toEqual(expect.objectContaining({ level: expect.any(String), time: expect.any(String), msg: expect.any(String), workerId: proc.name }));
    }
    expect(lines.find((l) => l.executionId === done.executionId)).toMatchObject({
      level: 'info',
      msg: 'execution finished',
      tenant: TEST_TENANT,
      sessionId: 'obs-logs',
      status: 'completed',
    });
    expect(lines.some((l) => l.lifecycle === true && /ready/.test(String(l.msg)))).toBe(true);
    // The api runs at LOG_LEVEL=warn: only its lifecycle lines, as JSON.
    const apiLines = jsonLines(stack.apis[0].output);
    expect(apiLines.length).toBeGreaterThanOrEqual(1);
    for (const line of apiLines) expect(line).toEqual(expect.objectContaining({ level: expect.any(String), time: expect.any(String), msg: expect.any(String), app: 'api' }));
    expect(apiLines.some((l) => /listening on/.test(String(l.msg)))).toBe(true);
  });

  it('serves a valid OpenAPI 3 document at /docs-json without an API key, describing every route with its problems', async () => {
    const answer = await readAnswer(await fetch(`${stack.url}/docs-json`));
    expect(answer.status).toBe(200);
    const document = answer.json as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }>; requestBody?: unknown }>> };
    expect(document.openapi).toMatch(/^3\./);
    expect(new OpenAPISchemaValidator({ version: 3 }).validate(document as never).errors).toEqual([]);

    const documented = Object.entries(document.paths)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(controllerRoutes(AppModule));

    const operation = (route: string) => {
      const [method, path] = route.split(' ');
      return document.paths[path][method.toLowerCase()];
    };
    const problems = (route: string) =>
      Object.entries(operation(route).responses)
        .filter(([, r]) => r.content?.['application/problem+json'])
        .map(([status]) => Number(status));
    expect(problems('POST /v1/sessions/{sessionId}/executions')).toEqual([400, 401, 405, 409, 413, 415, 422, 429, 503]);
    expect(problems('GET /v1/executions/{executionId}')).toEqual([400, 401, 404, 405, 503]);
    expect(problems('POST /v1/executions/{executionId}/cancel')).toEqual([400, 401, 404, 405, 409, 503]);
    expect(problems('GET /health/ready')).toEqual([405, 503]);
    for (const route of documented) {
      expect({ route, problems: problems(route).length > 0 }).toEqual({ route, problems: true });
    }
    expect(operation('POST /v1/sessions/{sessionId}/executions').requestBody).toEqual({
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/SubmitExecution' } } },
    });
  });

  it('counts the failover of a lost worker on the worker that reaped it', async () => {
    const survivor = stack.workers[0];
    const lost = await stack.startWorker(WORKER_ENV);
    // A session homed on the new worker: the shared queue hands new sessions to either.
    let session: string | undefined;
    for (let i = 0; i < 40 && !session; i++) {
      const probe = await stack.run(`obs-fo-${i}`, { code: 'print(1)' });
      if (probe.kernel?.workerId === lost.name) session = `obs-fo-${i}`;
    }
    if (!session) throw new Error(`no session landed on ${lost.name}`);
    const unknown = { ...TERMINAL, status: 'outcome_unknown' };
    const before = await scrape(survivor.metricsUrl!);
    const running = await stack.submit(session, { code: 'import time\nprint("in the kernel", flush=True)\ntime.sleep(60)', timeoutMs: 90_000 });
    // Only code that reached the kernel ends outcome_unknown (code that never did runs elsewhere).
    await readSse(`${stack.url}/v1/executions/${running.executionId}/events`, stack.headers(), (events) => events.some((e) => e.event === 'stdout'));
    await lost.stop('SIGKILL');

    expect((await stack.settled(running.executionId, 60_000)).status).toBe('outcome_unknown');
    const after = await eventually(
      () => scrape(survivor.metricsUrl!),
      (s) => (valueOf(s, 'kernelfleet_executions_total', unknown) ?? 0) > (valueOf(before, 'kernelfleet_executions_total', unknown) ?? 0),
    );
    expect(valueOf(after, 'kernelfleet_workers_reaped_total')).toBe((valueOf(before, 'kernelfleet_workers_reaped_total') ?? 0) + 1);
    expect(valueOf(after, 'kernelfleet_executions_recovered_total')).toBe((valueOf(before, 'kernelfleet_executions_recovered_total') ?? 0) + 1);
    expect(valueOf(after, 'kernelfleet_sessions_rehomed_total')).toBeGreaterThanOrEqual((valueOf(before, 'kernelfleet_sessions_rehomed_total') ?? 0) + 1);
    expect(valueOf(after, 'kernelfleet_executions_total', unknown)).toBe((valueOf(before, 'kernelfleet_executions_total', unknown) ?? 0) + 1);
  });

  it('serves Swagger UI at /docs and the metrics at /metrics without an API key', async () => {
    const docs = await fetch(`${stack.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await docs.text();
    expect(html).toMatch(/swagger-ui/i);
    // Its scripts load too (served from swagger-ui-dist beside the page).
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => new URL(m[1], `${stack.url}/docs`).pathname);
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    for (const path of scripts) expect({ path, status: (await fetch(`${stack.url}${path}`)).status }).toEqual({ path, status: 200 });
    expect((await fetch(api())).status).toBe(200);
  });
});
