import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** The fields of docker-compose.yml's services that the container tests carry over. */
export interface ComposeService {
  image: string;
  command?: string[];
  environment: Record<string, string>;
  ports?: string[];
  user?: string;
  read_only?: boolean;
  init?: boolean;
  tmpfs?: string[];
  volumes?: (string | { type: string; target: string; tmpfs?: { size?: number } })[];
  cap_add?: string[];
  cap_drop?: string[];
  security_opt?: string[];
  healthcheck?: { test: string[]; timeout?: string; retries?: number; start_period?: string };
  restart?: string;
  stop_grace_period?: string;
}

export const COMPOSE_FILE = join(__dirname, '..', '..', '..', 'docker-compose.yml');

/**
 * docker-compose.yml's services with `${VAR}`, `${VAR:-default}`, `${VAR:?message}` and `$$`
 * interpolated from `env`, as Compose does: the tests run the file's own settings. (Compose v2
 * is not installable on every test machine and Debian's v1 rejects the Compose Spec's `name`, so
 * testcontainers' GenericContainer and Network run the services: docs/operations.md.)
 */
export function loadComposeServices(env: Record<string, string | undefined>): Record<string, ComposeService> {
  const file = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  return interpolate(file.services, env) as Record<string, ComposeService>;
}

function interpolate(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolateString(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  }
  return value;
}

function interpolateString(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g, (whole, name?: string, op?: string, arg?: string) => {
    if (whole === '$$') return '$';
    const set = env[name!] !== undefined && env[name!] !== '';
    if (op === '-') return set ? env[name!]! : arg!;
    if (op === '?' && !set) throw new Error(`docker-compose.yml: ${name} is required: ${arg}`);
    return env[name!] ?? '';
  });
}

/** Compose durations as used in the file ("5s", "660s", "1m") in milliseconds. */
export function durationMs(text: string | undefined, fallbackMs: number): number {
  if (!text) return fallbackMs;
  const match = /^(\d+)(ms|s|m)$/.exec(text);
  if (!match) throw new Error(`unsupported compose duration ${text}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}
