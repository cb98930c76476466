import type { FleetSnapshot } from '@kernelfleet/store';
import { dashboardScript, fleetPage, renderFleet } from './fleet-page';

const now = 1_800_000_000_000;
const snapshot = (over: Partial<FleetSnapshot> = {}): FleetSnapshot => ({
  at: now,
  workers: [
    { workerId: 'w1', alive: true, draining: false, kernels: 3, maxKernels: 32, concurrency: 4, running: 1, sessions: 2, heartbeatAgeMs: 1_200, queue: 'kf-worker-w1' },
    { workerId: 'w2', alive: false, draining: false, kernels: null, maxKernels: null, concurrency: null, running: 0, sessions: 0, heartbeatAgeMs: null, queue: 'kf-worker-w2' },
  ],
  capacity: { workers: 1, capacity: 32, held: 3, evictable: 0, waitingForKernel: 4, full: false },
  running: { total: 1, items: [{ tenant: 'acme', sessionId: 's-1', executionId: 'ex_1', workerId: 'w1', startedAt: now - 3_000 }], more: 0 },
  sessions: {
    total: 3,
    items: [{ tenant: 'acme', sessionId: '<script>alert(1)</script>', workerId: 'w1', pending: 2, kernelState: 'idle', generation: 1, lastActivityAt: now - 61_000 }],
    more: 2,
  },
  queues: [{ name: 'kf-shared', waiting: 4, active: 1, delayed: 0, failed: 0 }],
  rates: { windowMs: 60_000, perMinute: { completed: 12, failed: 1, cancelled: 0, timed_out: 0, outcome_unknown: 0 } },
  timings: { windowMs: 300_000, executions: 13, started: 13, queueWaitMs: { p50: 4, p99: 250 }, runMs: { p50: 1_500, p99: 20_000 }, truncated: false },
  ...over,
});

describe('the fleet page', () => {
  it('shows workers, what runs, queues, rates and timings, and how many rows were left out', () => {
    const html = renderFleet(snapshot(), now);
    expect(html).toContain('<b data-testid="running-total">1</b> running');
    expect(html).toContain('<b data-testid="workers-alive">1</b> of 2 workers alive');
    expect(html).toMatch(/data-worker-id="w1".*alive.*3 \/ 32.*1 \/ 4.*1\.2 s ago/);
    expect(html).toMatch(/data-worker-id="w2" class="lost">.*lost.*none \(lease expired\)/);
    expect(html).toMatch(/data-session-id="s-1">.*ex_1.*3\.0 s/);
    expect(html).toContain('and 2 more sessions');
    expect(html).toMatch(/data-queue="kf-shared">.*<td>4<\/td><td>1<\/td>/);
    expect(html).toMatch(/queue wait<\/th><td>4 ms<\/td><td>250 ms<\/td>/);
    expect(html).toMatch(/run time<\/th><td>1\.5 s<\/td><td>20\.0 s<\/td>/);
    expect(html).toContain('<td>12</td><td>1</td>');
    expect(html).toContain('Timings, last 5 min</h2>');
    expect(html).toMatch(/data-session-id="&lt;script&gt;alert\(1\)&lt;\/script&gt;">.*1 min 1 s ago/);
    expect(html).toContain('session kernels <b data-testid="kernels-held">3</b> of 32 in use');
    expect(html).not.toContain('no kernel capacity');
  });

  it('shows a full fleet with new sessions waiting as the pressure it is', () => {
    const html = renderFleet(snapshot({ capacity: { workers: 1, capacity: 4, held: 4, evictable: 0, waitingForKernel: 2, full: true } }), now);
    expect(html).toMatch(/<b data-testid="waiting-for-kernel">2<\/b> new sessions waiting for a kernel · .*no kernel capacity: add workers/);
  });

  it('escapes what tenants named', () => {
    const html = renderFleet(snapshot(), now);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('says so when nothing runs', () => {
    expect(renderFleet(snapshot({ running: { total: 0, items: [], more: 0 } }), now)).toContain('nothing running');
  });

  it('serves a script that parses and renders what the server renders', () => {
    const script = dashboardScript();
    expect(() => new Function(script)).not.toThrow();
    expect(script).toContain(renderFleet.toString());
    // Evaluated away from this module's scope, as in the browser: it needs nothing from here.
    const render = new Function(`return (${renderFleet.toString()});`)() as typeof renderFleet;
    expect(render(snapshot(), now)).toBe(renderFleet(snapshot(), now));
  });

  it('loads only its own script', () => {
    const html = fleetPage(snapshot());
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script src="/admin/dashboard.js">']);
    expect(html).not.toMatch(/https?:\/\//);
  });
});
