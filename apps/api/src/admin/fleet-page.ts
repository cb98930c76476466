import type { FleetSnapshot } from '@kernelfleet/store';

/*
 * The fleet page: HTML rendered here, refreshed in the browser by a small script. No bundler:
 * `renderFleet` and `dashboardClient` are self-contained functions (they use nothing from this
 * module's scope), type-checked with the rest of the api and sent to the browser as their own
 * source text (`Function.prototype.toString`), so the server's first render and the browser's
 * later ones are the same code.
 */

/** The live part of the page for one snapshot. Self-contained: see the note above. */
export function renderFleet(s: FleetSnapshot, now: number): string {
  const esc = (v: unknown) =>
    String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
  const ms = (v: number | null | undefined) => {
    if (v === null || v === undefined) return '–';
    if (v < 1_000) return `${Math.round(v)} ms`;
    if (v < 60_000) return `${(v / 1_000).toFixed(1)} s`;
    if (v < 3_600_000) return `${Math.floor(v / 60_000)} min${v % 60_000 >= 1_000 ? ` ${Math.floor((v % 60_000) / 1_000)} s` : ''}`;
    return `${(v / 3_600_000).toFixed(1)} h`;
  };
  const ago = (at: number | null) => (at === null ? '–' : `${ms(Math.max(0, now - at))} ago`);
  const table = (head: string[], rows: string[], empty: string) =>
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${
      rows.length ? rows.join('') : `<tr><td colspan="${head.length}" class="empty">${esc(empty)}</td></tr>`
    }</tbody></table>`;
  const more = (n: number, what: string) => (n > 0 ? `<p class="more" data-testid="${what}-more">and ${n} more ${what}</p>` : '');

  const alive = s.workers.filter((w) => w.alive).length;
  const waiting = s.queues.reduce((sum, q) => sum + q.waiting, 0);
  const summary =
    `<p class="summary"><b data-testid="workers-alive">${alive}</b> of ${s.workers.length} workers alive · ` +
    `<b data-testid="running-total">${s.running.total}</b> running · ` +
    `<b data-testid="sessions-total">${s.sessions.total}</b> sessions homed · ` +
    `<b data-testid="waiting-total">${waiting}</b> jobs waiting</p>`;
  // Kernel pressure (docs/capacity.md): a full fleet makes new sessions wait, then time out.
  const c = s.capacity;
  const pressure =
    `<p class="summary" data-testid="capacity">session kernels <b data-testid="kernels-held">${c.held}</b> of ${c.capacity} in use · ` +
    `<b data-testid="kernels-evictable">${c.evictable}</b> idle long enough to evict · ` +
    `<b data-testid="waiting-for-kernel">${c.waitingForKernel}</b> new sessions waiting for a kernel` +
    (c.full && c.waitingForKernel > 0 ? ' · <span class="bad" data-testid="capacity-full">no kernel capacity: add workers</span>' : '') +
    '</p>';

  const workers = table(
    ['worker', 'state', 'kernels / max', 'running / concurrency', 'sessions', 'heartbeat', 'queue'],
    s.workers.map(
      (w) =>
        `<tr data-testid="worker-row" data-worker-id="${esc(w.workerId)}" class="${w.alive ? '' : 'lost'}">` +
        `<td>${esc(w.workerId)}</td>` +
        `<td>${w.alive ? (w.draining ? '<span class="warn">draining</span>' : '<span class="ok">alive</span>') : '<span class="bad">lost</span>'}</td>` +
        `<td>${w.kernels ?? '–'} / ${w.maxKernels ?? '–'}</td>` +
        `<td>${w.running} / ${w.concurrency ?? '–'}</td>` +
        `<td>${w.sessions}</td>` +
        `<td>${w.heartbeatAgeMs === null ? 'none (lease expired)' : `${ms(w.heartbeatAgeMs)} ago`}</td>` +
        `<td>${esc(w.queue)}</td></tr>`,
    ),
    'no worker registered',
  );

  const running =
    table(
      ['tenant', 'session', 'execution', 'worker', 'running for'],
      s.running.items.map(
        (r) =>
          `<tr data-testid="running-row" data-session-id="${esc(r.sessionId)}"><td>${esc(r.tenant)}</td><td>${esc(r.sessionId)}</td>` +
          `<td><code>${esc(r.executionId)}</code></td><td>${esc(r.workerId)}</td><td>${r.startedAt === null ? '–' : ms(now - r.startedAt)}</td></tr>`,
      ),
      'nothing running',
    ) + more(s.running.more, 'running');

  const sessions =
    table(
      ['tenant', 'session', 'home worker', 'pending', 'kernel', 'last activity'],
      s.sessions.items.map(
        (x) =>
          `<tr data-testid="session-row" data-session-id="${esc(x.sessionId)}"><td>${esc(x.tenant)}</td><td>${esc(x.sessionId)}</td>` +
          `<td>${esc(x.workerId)}</td><td>${x.pending}</td><td>${esc(x.kernelState)} (generation ${x.generation})</td><td>${ago(x.lastActivityAt)}</td></tr>`,
      ),
      'no session homed on a worker',
    ) + more(s.sessions.more, 'sessions');

  const queues = table(
    ['queue', 'waiting', 'active', 'delayed', 'failed'],
    s.queues.map(
      (q) =>
        `<tr data-testid="queue-row" data-queue="${esc(q.name)}"><td>${esc(q.name)}</td><td>${q.waiting}</td><td>${q.active}</td><td>${q.delayed}</td><td>${q.failed}</td></tr>`,
    ),
    'no queue',
  );

  const r = s.rates.perMinute;
  const t = s.timings;
  const throughput = table(
    ['completed', 'failed', 'cancelled', 'timed out', 'outcome unknown'],
    [`<tr data-testid="rates-row"><td>${r.completed}</td><td>${r.failed}</td><td>${r.cancelled}</td><td>${r.timed_out}</td><td>${r.outcome_unknown}</td></tr>`],
    '',
  );
  const latency =
    table(
      ['', 'p50', 'p99'],
      [
        `<tr><th>queue wait</th><td>${ms(t.queueWaitMs.p50)}</td><td>${ms(t.queueWaitMs.p99)}</td></tr>`,
        `<tr><th>run time</th><td>${ms(t.runMs.p50)}</td><td>${ms(t.runMs.p99)}</td></tr>`,
      ],
      '',
    ) +
    `<p class="note">${t.started} of ${t.executions} executions that ended in the last ${ms(t.windowMs)} had started` +
    `${t.truncated ? ' (busier than the kept history: only the most recent are counted)' : ''}.</p>`;

  return (
    summary +
    pressure +
    `<section><h2>Workers</h2>${workers}</section>` +
    `<section><h2>Running executions</h2>${running}</section>` +
    `<section><h2>Queues</h2>${queues}</section>` +
    `<section class="pair"><div><h2>Ended per minute</h2>${throughput}</div><div><h2>Timings, last ${ms(t.windowMs)}</h2>${latency}</div></section>` +
    `<section><h2>Sessions</h2>${sessions}</section>`
  );
}

/**
 * The browser side: polls /admin/fleet.json every second and re-renders with `render`. A
 * logged-out browser (401) goes back to the login form. Self-contained: see the note above.
 */
export function dashboardClient(render: (s: FleetSnapshot, now: number) => string): void {
  const fleet = document.getElementById('fleet') as HTMLElement;
  const status = document.getElementById('status') as HTMLElement;
  let lastOk = Date.now();
  const tick = async () => {
    try {
      const res = await fetch('/admin/fleet.json', { headers: { accept: 'application/json' }, cache: 'no-store' });
      if (res.status === 401) {
        location.href = `/admin/login?next=${encodeURIComponent(location.pathname)}`;
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const snapshot = (await res.json()) as FleetSnapshot;
      fleet.innerHTML = render(snapshot, snapshot.at);
      lastOk = Date.now();
      status.textContent = `live · updated ${new Date(snapshot.at).toLocaleTimeString()}`;
      status.className = 'live';
    } catch (error) {
      status.textContent = `not updating (${String(error)}); last update ${Math.round((Date.now() - lastOk) / 1000)} s ago`;
      status.className = 'stale';
    }
    setTimeout(() => void tick(), 1_000);
  };
  setTimeout(() => void tick(), 1_000);
}

/** The script the page loads from /admin/dashboard.js. */
export function dashboardScript(): string {
  return `'use strict';\nconst renderFleet = ${renderFleet.toString()};\n(${dashboardClient.toString()})(renderFleet);\n`;
}

/** Only our own script and inline styles run on these pages. */
export const ADMIN_PAGE_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1f24; background: #fafbfc; }
header { display: flex; align-items: baseline; gap: 1.5rem; flex-wrap: wrap; }
h1 { font-size: 1.3rem; margin: 0; } h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
nav a, nav button { margin-right: 1rem; } nav form { display: inline; }
nav button { background: none; border: none; color: #0b5cad; cursor: pointer; font: inherit; padding: 0; text-decoration: underline; }
table { border-collapse: collapse; background: #fff; min-width: 30rem; }
th, td { border: 1px solid #d8dee4; padding: .25rem .6rem; text-align: left; white-space: nowrap; }
thead th { background: #eef1f4; }
td.empty, .note, .more { color: #57606a; } .note { font-size: .85rem; }
.ok { color: #1a7f37; } .warn { color: #9a6700; } .bad, .stale { color: #cf222e; } .live { color: #1a7f37; }
tr.lost { background: #fff0f0; }
.pair { display: flex; gap: 2rem; flex-wrap: wrap; } .summary { font-size: 1.05rem; }
form.login { background: #fff; border: 1px solid #d8dee4; padding: 1.5rem; max-width: 26rem; }
form.login input[type=password] { width: 100%; box-sizing: border-box; padding: .4rem; margin: .4rem 0 .8rem; font: inherit; }
.error { color: #cf222e; }
`;

const esc = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string, script = ''): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}${script}</body></html>`
  );
}

/** The fleet page with its first render; the script keeps it current. */
export function fleetPage(snapshot: FleetSnapshot): string {
  return page(
    'kernelfleet — fleet',
    `<header><h1>kernelfleet fleet</h1><nav><a href="/admin/queues">Queues (bull-board)</a><a href="/admin/fleet.json">fleet.json</a>` +
      `<form method="post" action="/admin/logout"><button type="submit">Log out</button></form></nav>` +
      `<span id="status" class="live">updated ${new Date(snapshot.at).toISOString()}</span></header>` +
      `<main id="fleet">${renderFleet(snapshot, snapshot.at)}</main>`,
    `<script src="/admin/dashboard.js"></script>`,
  );
}

/** The login form; `error` after a wrong key. */
export function loginPage(next: string, error?: string): string {
  return page(
    'kernelfleet — admin login',
    `<h1>kernelfleet admin</h1>` +
      `<form class="login" method="post" action="/admin/login">` +
      `<label for="key">Admin key (ADMIN_KEY)</label>` +
      `<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>` +
      `<input type="hidden" name="next" value="${esc(next)}">` +
      (error ? `<p class="error" role="alert">${esc(error)}</p>` : '') +
      `<button type="submit">Log in</button></form>`,
  );
}
