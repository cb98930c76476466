import type { FastifyRequest } from 'fastify';
import { ADMIN_SESSION_MS, AdminSessions, isPageNavigation, quality, readCookie, safeNext } from './admin-sessions';

const KEY = 'k'.repeat(40);
const request = (headers: Record<string, string>) => ({ headers, method: 'GET' }) as unknown as FastifyRequest;

describe('admin sessions', () => {
  const sessions = new AdminSessions(KEY);

  it('issues a token that is valid until it expires, and only for the same ADMIN_KEY', () => {
    const now = 1_800_000_000_000;
    const token = sessions.issue(now);
    expect(sessions.verify(token, now)).toBe(true);
    expect(sessions.verify(token, now + ADMIN_SESSION_MS - 1)).toBe(true);
    expect(sessions.verify(token, now + ADMIN_SESSION_MS)).toBe(false);
    expect(new AdminSessions('x'.repeat(40)).verify(token, now)).toBe(false);
  });

  it('refuses a token whose expiry was pushed out or whose MAC was altered', () => {
    const now = 1_800_000_000_000;
    const [expiresAt, mac] = sessions.issue(now).split('.');
    expect(sessions.verify(`${Number(expiresAt) + 1}.${mac}`, now)).toBe(false);
    expect(sessions.verify(`${expiresAt}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`, now)).toBe(false);
    expect(sessions.verify(`${expiresAt}.${mac}x`, now)).toBe(false);
    expect(sessions.verify(KEY, now)).toBe(false);
    expect(sessions.verify('', now)).toBe(false);
  });

  it('accepts the admin key as Bearer or a session cookie, and nothing else', () => {
    const token = sessions.issue();
    expect(sessions.credential(request({ authorization: `Bearer ${KEY}` }))).toBe('bearer');
    expect(sessions.credential(request({ cookie: `other=1; kf_admin=${token}` }))).toBe('cookie');
    expect(sessions.credential(request({ authorization: `Bearer ${KEY}x` }))).toBeNull();
    // A wrong Bearer is not rescued by a good cookie: the caller said who it is.
    expect(sessions.credential(request({ authorization: 'Bearer nope', cookie: `kf_admin=${token}` }))).toBeNull();
    expect(sessions.credential(request({ cookie: `kf_admin=${KEY}` }))).toBeNull();
    expect(sessions.credential(request({}))).toBeNull();
  });

  it('sets an HttpOnly, SameSite=Strict cookie on /admin, Secure over https', () => {
    expect(sessions.cookie('t', false)).toBe(`kf_admin=t; Path=/admin; Max-Age=${ADMIN_SESSION_MS / 1000}; HttpOnly; SameSite=Strict`);
    expect(sessions.cookie('t', true)).toMatch(/; Secure$/);
    expect(sessions.clearedCookie(false)).toMatch(/^kf_admin=; Path=\/admin; Max-Age=0;/);
  });

  it('reads one cookie out of a Cookie header', () => {
    expect(readCookie('a=1; kf_admin=xyz ; b=2', 'kf_admin')).toBe('xyz');
    expect(readCookie('kf_admin_other=1', 'kf_admin')).toBeNull();
    expect(readCookie(undefined, 'kf_admin')).toBeNull();
  });

  it('goes back only to /admin pages of this api after logging in', () => {
    expect(safeNext('/admin/queues')).toBe('/admin/queues');
    expect(safeNext('/admin/queues/queue/kf-shared?status=active')).toBe('/admin/queues/queue/kf-shared?status=active');
    expect(safeNext('/admin')).toBe('/admin');
    for (const bad of ['https://evil.example/admin', '//evil.example/admin', '/administrator', '/admin\\..\\x', '/v1/sessions', undefined, 7]) {
      expect(safeNext(bad)).toBe('/admin');
    }
  });

  it('tells a browser navigating from a script by what its Accept header prefers', () => {
    const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
    expect(quality(browser, 'text/html')).toBe(1);
    expect(quality(browser, 'application/json')).toBe(0.8);
    expect(quality('application/json;q=0.5, text/*;q=0.7', 'text/html')).toBe(0.7);
    expect(quality('application/json', 'text/html')).toBe(0);
    const navigating = (accept?: string, method = 'GET') =>
      isPageNavigation({ method, headers: accept === undefined ? {} : { accept } } as unknown as FastifyRequest);
    expect(navigating(browser)).toBe(true);
    expect(navigating(browser, 'POST')).toBe(false);
    // fetch and curl send */*: both types equally wanted, so not a page navigation.
    expect(navigating('*/*')).toBe(false);
    expect(navigating(undefined)).toBe(false);
    expect(navigating('application/json')).toBe(false);
  });
});
