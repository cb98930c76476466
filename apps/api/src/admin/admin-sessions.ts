import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { digestApiKey, digestsEqual } from '@kernelfleet/store';
import { bearerToken } from '../auth/bearer';

/** The cookie a browser gets from /admin/login. */
export const ADMIN_COOKIE = 'kf_admin';
/** How long a browser login lasts. */
export const ADMIN_SESSION_MS = 12 * 3_600_000;

/** How a request proved it is the operator, or null. */
export type AdminCredential = 'bearer' | 'cookie' | null;

/**
 * Operator sessions for the /admin pages. Browsers cannot send a Bearer header when they
 * navigate, so /admin/login trades the admin key for a cookie holding
 * `<expiresAt>.<HMAC-SHA256(k, expiresAt)>`, where `k` is derived from ADMIN_KEY. Nothing is
 * stored: every api replica with the same ADMIN_KEY accepts it, and changing ADMIN_KEY ends
 * every session at once. Scripts keep using `Authorization: Bearer <ADMIN_KEY>`.
 */
export class AdminSessions {
  private readonly adminDigest: string;
  private readonly macKey: Buffer;

  constructor(adminKey: string) {
    this.adminDigest = digestApiKey(adminKey);
    // A key of its own, so a token never reveals anything usable as or against ADMIN_KEY itself.
    this.macKey = createHmac('sha256', adminKey).update('kernelfleet admin session v1').digest();
  }

  /** Whether `key` is the admin key (constant time: digests have one length). */
  isAdminKey(key: string): boolean {
    return digestsEqual(digestApiKey(key), this.adminDigest);
  }

  /** A session token valid until `now + ADMIN_SESSION_MS`. */
  issue(now = Date.now()): string {
    const expiresAt = String(now + ADMIN_SESSION_MS);
    return `${expiresAt}.${this.mac(expiresAt)}`;
  }

  verify(token: string, now = Date.now()): boolean {
    const match = /^(\d{13,16})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!match || Number(match[1]) <= now) return false;
    const expected = Buffer.from(this.mac(match[1]));
    const presented = Buffer.from(match[2]);
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  }

  /** Bearer (scripts) first, then the session cookie (browsers). */
  credential(req: FastifyRequest, now = Date.now()): AdminCredential {
    const bearer = bearerToken(req.headers.authorization);
    if (bearer !== null) return this.isAdminKey(bearer) ? 'bearer' : null;
    const cookie = readCookie(req.headers.cookie, ADMIN_COOKIE);
    return cookie !== null && this.verify(cookie, now) ? 'cookie' : null;
  }

  /** `Set-Cookie` for a new session: HttpOnly, SameSite=Strict, Path=/admin, Secure over https. */
  cookie(token: string, secure: boolean): string {
    return serializeCookie(token, Math.floor(ADMIN_SESSION_MS / 1000), secure);
  }

  /** `Set-Cookie` that removes the session cookie. */
  clearedCookie(secure: boolean): string {
    return serializeCookie('', 0, secure);
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.macKey).update(payload).digest('base64url');
  }
}

function serializeCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return [`${ADMIN_COOKIE}=${value}`, 'Path=/admin', `Max-Age=${maxAgeSeconds}`, 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])].join(
    '; ',
  );
}

/** One cookie's value from a `Cookie` header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/**
 * Whether the request came over https: directly, or through a proxy that says so. Trusting the
 * header here only decides whether the cookie gets `Secure`; a forged one harms nobody else.
 */
export function isHttps(req: FastifyRequest): boolean {
  const forwarded = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0].trim();
  return req.protocol === 'https' || forwarded === 'https';
}

/** A browser navigating (wants a page: gets sent to the login form) rather than a script or an XHR. */
export function isPageNavigation(req: FastifyRequest): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (req.headers['sec-fetch-mode'] === 'navigate') return true;
  const accept = req.headers.accept;
  return accept !== undefined && quality(accept, 'text/html') > quality(accept, 'application/json');
}

/**
 * How much an `Accept` header wants `type` (0 to 1), from its most specific matching range:
 * the exact type before `type/*` before the range of every type. Only called with a header.
 */
export function quality(accept: string, type: string): number {
  const [main] = type.split('/');
  let best = { specificity: -1, q: 0 };
  for (const part of accept.split(',')) {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    const specificity = range === type ? 2 : range === `${main}/*` ? 1 : range === '*/*' ? 0 : -1;
    if (specificity <= best.specificity) continue;
    const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    best = { specificity, q: q === undefined ? 1 : Math.min(1, Number(q) || 0) };
  }
  return best.q;
}

/**
 * Where to go after logging in: an /admin path of this api, else /admin. Refuses other hosts,
 * protocol-relative and backslash tricks.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string') return '/admin';
  return /^\/admin(?:[/?#][^\s\\]*)?$/.test(next) && !next.startsWith('//') ? next : '/admin';
}
