/**
 * The operator's dashboard (docs/operations.md, Dashboard): the live fleet page at /admin and
 * bull-board at /admin/queues, in a real headless Chromium (Debian's, driven by
 * playwright-core) against a real api and two real workers. Without credentials both answer
 * 401 problem+json to scripts and send browsers to the login form; without ADMIN_KEY they do
 * not exist.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expectProblem, type Answer } from '../support/problem-assertions';
import { readAnswer, Stack } from '../support/stack';

const ADMIN_KEY = `admin-${randomBytes(24).toString('hex')}`;
const CHROMIUM = '/usr/bin/chromium';
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

async function bare(url: string, init: RequestInit = {}): Promise<Answer> {
  return readAnswer(await fetch(url, { redirect: 'manual', ...init }));
}

function expectUnauthorized(res: Answer): void {
  expectProblem(res, 401);
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
}

/** Logs in through the form, as a person would, starting from `path`; ends on `path`. */
async function logIn(page: Page, base: string, path: string): Promise<void> {
  await page.goto(`${base}${path}`);
  expect(new URL(page.url()).pathname).toBe('/admin/login');
  await page.fill('#key', ADMIN_KEY);
  await Promise.all([page.waitForURL((url) => url.pathname === path), page.click('button[type=submit]')]);
}

describe('the admin dashboard', () => {
  let stack: Stack;
  let browser: Browser;
  const workerIds = () => stack.workers.map((w) => w.name);

  beforeAll(async () => {
    stack = await Stack.start({ workers: 2, apiEnv: { ADMIN_KEY } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('shows a logged-in operator the fleet live: a running execution appears with every live worker, and goes when cancelled', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    await logIn(page, stack.url, '/admin');
    await page.locator('[data-testid=running-total]').filter({ hasText: /^0$/ }).waitFor();

    // Submitted after the page loaded: only the page's own refresh can show it.
    const long = await stack.submit('dash-long', { code: 'import time\ntime.sleep(20)\nprint("slept")', timeoutMs: 60_000 });
    try {
      await stack.waitForStatus(long.executionId, 'running');
      const row = page.locator('[data-testid=running-row][data-session-id="dash-long"]');
      await row.waitFor({ timeout: 30_000 });
      expect(await row.textContent()).toContain(long.executionId);
      await page.locator('[data-testid=running-total]').filter({ hasText: /^1$/ }).waitFor();
      for (const workerId of workerIds()) {
        const worker = page.locator(`[data-testid=worker-row][data-worker-id="${workerId}"]`);
        await worker.waitFor();
        expect(await worker.textContent()).toContain('alive');
      }
      await page.locator('[data-testid=session-row][data-session-id="dash-long"]').waitFor();

      const screenshot = join(tmpdir(), `kernelfleet-dashboard-${stack.prefix}.png`);
      await page.screenshot({ path: screenshot, fullPage: true });
      process.stdout.write(`dashboard screenshot: ${screenshot}\n`);
      expect(statSync(screenshot).size).toBeGreaterThan(PNG_SIGNATURE.length);
      expect(readFileSync(screenshot).subarray(0, PNG_SIGNATURE.length)).toEqual(PNG_SIGNATURE);
    } finally {
      await stack.request('POST', `/v1/executions/${long.executionId}/cancel`);
    }
    expect((await stack.settled(long.executionId)).status).toBe('cancelled');
    await page.locator('[data-testid=running-total]').filter({ hasText: /^0$/ }).waitFor({ timeout: 30_000 });
    await context.close();
  });

  it('serves the same numbers as JSON to scripts with the admin key', async () => {
    await stack.run('dash-json', { code: 'print(1)' });
    // The result reaches the client before the finish's follow-ups (the counters) are written,
    // and a snapshot may be reused for half a second: read until the completed one is counted.
    const read = () => bare(`${stack.url}/admin/fleet.json`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    let res = await read();
    for (const until = Date.now() + 10_000; res.status === 200 && res.json.rates.perMinute.completed === 0 && Date.now() < until; res = await read()) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(res.status).toBe(200);
    expect(res.json.workers.map((w: { workerId: string }) => w.workerId).sort()).toEqual(workerIds().sort());
    expect(res.json.workers.every((w: { alive: boolean }) => w.alive)).toBe(true);
    expect(res.json.queues.map((q: { name: string }) => q.name)).toEqual(['kf-shared', ...workerIds().map((w) => `kf-worker-${w}`).sort()]);
    // The first test's execution was cancelled while running; this one completed.
    expect(res.json.rates.perMinute.completed).toBeGreaterThanOrEqual(1);
    expect(res.json.rates.perMinute.cancelled).toBeGreaterThanOrEqual(1);
    expect(res.json.timings.started).toBeGreaterThanOrEqual(2);
    expect(res.json.timings.runMs.p50).toEqual(expect.any(Number));
    expect(res.json.timings.queueWaitMs.p99).toEqual(expect.any(Number));
  });

  it("shows bull-board to the operator with the shared queue, read-only, and a new worker's inbox on the fleet page", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await logIn(page, stack.url, '/admin/queues');
    await page.getByText('kf-shared', { exact: true }).first().waitFor({ timeout: 30_000 });
    const screenshot = join(tmpdir(), `kernelfleet-queues-${stack.prefix}.png`);
    await page.screenshot({ path: screenshot });
    process.stdout.write(`bull-board screenshot: ${screenshot}\n`);
    await context.close();

    const admin = { authorization: `Bearer ${ADMIN_KEY}` };
    const listed = async () => ((await bare(`${stack.url}/admin/queues/api/queues`, { headers: admin })).json.queues as { name: string; readOnlyMode: boolean }[]);
    const queues = await listed();
    expect(queues.map((q) => q.name)).toEqual(['kf-shared']);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
    expect((await bare(`${stack.url}/admin/queues`, { headers: admin })).headers.get('x-powered-by')).toBeNull();
    const paused = await bare(`${stack.url}/admin/queues/api/queues/kf-shared/pause`, { method: 'PUT', headers: admin });
    expect(paused.status).toBe(405);

    const third = await stack.startWorker();
    const fleetQueues = async () =>
      ((await bare(`${stack.url}/admin/fleet.json`, { headers: admin })).json.queues as { name: string }[]).map((q) => q.name);
    const until = Date.now() + 30_000;
    while (!(await fleetQueues()).includes(`kf-worker-${third.name}`)) {
      if (Date.now() > until) throw new Error(`the fleet page never listed kf-worker-${third.name}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  it('refuses the dashboard without the admin key: 401 problem+json to scripts, the login form to browsers', async () => {
    const paths = ['/admin', '/admin/fleet.json', '/admin/dashboard.js', '/admin/queues', '/admin/queues/api/queues'];
    for (const path of paths) {
      for (const authorization of [undefined, `Bearer ${ADMIN_KEY}x`, `Bearer ${stack.apiKey}`]) {
        const res = await bare(`${stack.url}${path}`, { headers: authorization ? { authorization } : {} });
        try {
          expectUnauthorized(res);
        } catch (error) {
          throw new Error(`GET ${path} with ${authorization ?? 'nothing'} answered ${res.status} ${res.text}\n${error}`);
        }
      }
      const navigation = await bare(`${stack.url}${path}`, { headers: { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' } });
      expect({ path, status: navigation.status, location: navigation.headers.get('location') }).toEqual({
        path,
        status: 303,
        location: `/admin/login?next=${encodeURIComponent(path)}`,
      });
    }
    // A forged or expired-looking cookie is no session.
    expectUnauthorized(await bare(`${stack.url}/admin/fleet.json`, { headers: { cookie: `kf_admin=9999999999999.${'A'.repeat(43)}` } }));
  });

  it('trades the admin key for a session cookie at /admin/login, and refuses a wrong one', async () => {
    const json = { 'content-type': 'application/json' };
    expectUnauthorized(await bare(`${stack.url}/admin/login`, { method: 'POST', headers: json, body: JSON.stringify({ key: `${ADMIN_KEY}x` }) }));
    const wrongForm = await bare(`${stack.url}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: 'nope', next: '/admin' }).toString(),
    });
    expect(wrongForm.status).toBe(401);
    expect(wrongForm.text).toContain('Wrong admin key');
    expect(wrongForm.headers.get('set-cookie')).toBeNull();

    const form = await bare(`${stack.url}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: ADMIN_KEY, next: 'https://elsewhere.example/' }).toString(),
    });
    expect({ status: form.status, location: form.headers.get('location') }).toEqual({ status: 303, location: '/admin' });
    const setCookie = form.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^kf_admin=[^;]+; Path=\/admin; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    const cookie = setCookie.split(';')[0];
    expect((await bare(`${stack.url}/admin/fleet.json`, { headers: { cookie } })).status).toBe(200);
    // The cookie is for the dashboard only: it is no tenant key and opens no /admin/keys.
    expectUnauthorized(await bare(`${stack.url}/admin/keys`, { headers: { cookie } }));
  });
});

describe('the admin dashboard without ADMIN_KEY', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ workers: 0 });
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('does not exist: every /admin page answers what an unknown route answers', async () => {
    for (const [method, path] of [
      ['GET', '/admin'],
      ['GET', '/admin/fleet.json'],
      ['GET', '/admin/login'],
      ['POST', '/admin/login'],
      ['GET', '/admin/queues'],
      ['GET', '/admin/queues/api/queues'],
    ]) {
      for (const authorization of [undefined, `Bearer ${ADMIN_KEY}`]) {
        const headers: Record<string, string> = { accept: 'text/html', ...(authorization ? { authorization } : {}) };
        const answer = await bare(`${stack.url}${path}`, { method, headers });
        const unknownPath = path.replace('/admin', '/admin-nothing-here');
        const unknown = await bare(`${stack.url}${unknownPath}`, { method, headers });
        expectProblem(answer, 404);
        expect(answer.text.split(path).join('<path>')).toBe(unknown.text.split(unknownPath).join('<path>'));
      }
    }
  });
});
