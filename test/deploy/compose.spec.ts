/**
 * docker-compose.yml against the Compose Specification JSON schema, plus what a schema cannot
 * say: references resolve, the worker scales, Redis is durable, the sandbox gets exactly its
 * capabilities, and every variable is one the apps read.
 *
 * The schema is the Compose Specification's `compose.schema.json` (draft-07; it knows `models`,
 * `provider`, `develop`) as bundled in the npm package dclint 3.1.0 (`schemas/`; a pinned
 * devDependency: dclint validates Compose files against it). Upgrading dclint updates it.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Ajv from 'ajv';
import draft07MetaSchema from 'ajv/dist/refs/json-schema-draft-07.json';
import { parse } from 'yaml';
import { apiEnvSchema, workerEnvSchema } from '../../libs/config/src/env-schema';
import { repoPath } from './support/kustomize';
import { containerCapabilities, securityDocCapabilities } from './support/security-doc';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Service = { [key: string]: Json } & {
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  volumes?: (string | { type: string; source?: string; target: string })[];
  ports?: Json[];
  cap_add?: string[];
  cap_drop?: string[];
  security_opt?: string[];
  healthcheck?: { test: string[] };
  command?: string[] | string;
  stop_grace_period?: string;
};
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, Json>;
  [key: string]: Json | Record<string, Service> | undefined;
}

/**
 * Compose's interpolation: `$$` → `$`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}` and `${VAR?message}` (a missing required variable throws).
 */
function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (all, name?: string, colon?: string, kind?: string, arg?: string) => {
    if (all === '$$') return '$';
    const value = env[name as string];
    const unset = value === undefined || (colon === ':' && value === '');
    if (kind === '?' && unset) throw new Error(`required variable ${name}: ${arg}`);
    if (kind === '-' && unset) return arg ?? '';
    return value ?? '';
  });
}

const COMPOSE_TEXT = readFileSync(repoPath('docker-compose.yml'), 'utf8');
const ENV = { REDIS_PASSWORD: 'test-password-0123456789abcdef' };
const load = (env: Record<string, string | undefined> = ENV): ComposeFile => parse(interpolate(COMPOSE_TEXT, env), { maxAliasCount: 100, merge: true }) as ComposeFile;

function composeSchemaValidator() {
  const dclint = dirname(require.resolve('dclint/package.json'));
  const schema = JSON.parse(readFileSync(join(dclint, 'schemas', 'compose.schema.json'), 'utf8')) as { $schema: string; title: string };
  expect(schema.$schema).toContain('draft-07');
  expect(schema.title).toBe('Compose Specification');
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The schema names draft-07 by its https address; Ajv knows the meta-schema by the http one.
  ajv.addMetaSchema({ ...draft07MetaSchema, $id: schema.$schema });
  return ajv.compile(schema);
}

describe('docker-compose.yml', () => {
  const validate = composeSchemaValidator();
  const compose = load();
  const { services } = compose;

  it('is valid against the Compose Specification schema', () => {
    const ok = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('fails the schema when a field has the wrong type (the check bites)', () => {
    const broken = load();
    (broken.services.worker as Json as { cap_add: Json }).cap_add = 'SETUID';
    expect(validate(broken)).toBe(false);
    const unknownKey = load();
    (unknownKey.services.api as { [key: string]: Json }).restart_policy = 'always';
    expect(validate(unknownKey)).toBe(false);
  });

  it('refuses to start without REDIS_PASSWORD', () => {
    expect(() => load({})).toThrow(/REDIS_PASSWORD/);
  });

  it('has redis, two api replicas on two loopback ports and worker, each with a healthcheck', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'api-2', 'redis', 'worker']);
    const { ports: ports1, ...api1 } = services.api as { ports?: string[] };
    const { ports: ports2, ...api2 } = services['api-2'] as { ports?: string[] };
    expect(api2).toEqual(api1);
    expect([ports1, ports2]).toEqual([['127.0.0.1:8080:8080'], ['127.0.0.1:8081:8080']]);
    for (const [name, service] of Object.entries(services)) {
      expect([name, (service.healthcheck?.test ?? []).length > 1]).toEqual([name, true]);
    }
  });

  it('depends only on services that exist, with conditions they can meet', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect({ name, dependency, exists: dependency in services }).toEqual({ name, dependency, exists: true });
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy') expect(services[dependency].healthcheck).toBeDefined();
      }
    }
    expect(services.api.depends_on?.redis.condition).toBe('service_healthy');
    expect(services.worker.depends_on?.redis.condition).toBe('service_healthy');
  });

  it('declares every named volume a service mounts', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const service of Object.values(services)) {
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0] : volume.type === 'volume' ? volume.source : undefined;
        if (source && !source.startsWith('/') && !source.startsWith('.')) expect(declared).toContain(source);
      }
    }
    expect(services.redis.volumes).toContain('redis-data:/data');
  });

  it('lets the worker scale: no container name, no published ports, no fixed WORKER_ID', () => {
    const worker = services.worker;
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports ?? []).toEqual([]);
    expect(worker.environment?.WORKER_ID).toBeUndefined();
    expect(worker.hostname).toBeUndefined();
  });

  it('runs Redis with AOF, an fsync per write, noeviction (BullMQ needs it) and a password', () => {
    const command = [services.redis.command ?? []].flat().join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--appendfsync always/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(command).toMatch(/--requirepass/);
    for (const app of ['api', 'worker']) {
      expect(services[app].environment?.REDIS_URL).toBe(`redis://:${ENV.REDIS_PASSWORD}@redis:6379`);
    }
  });

  it('gives the worker root with the capabilities docs/security.md names plus NET_ADMIN, and the api none', () => {
    const worker = services.worker;
    expect(worker.user ?? 'root').toBe('root');
    expect(worker.cap_drop).toEqual(['ALL']);
    // Compose has no init container: the worker installs and holds the kernels' network rules
    // itself, so it gets NET_ADMIN on top of what a Kubernetes worker container gets.
    expect(securityDocCapabilities()).not.toContain('NET_ADMIN');
    expect([...(worker.cap_add ?? [])].sort()).toEqual([...securityDocCapabilities(), 'NET_ADMIN'].sort());
    // Docker's default AppArmor profile refuses the mounts of each kernel's private /tmp.
    expect([...(worker.security_opt ?? [])].sort()).toEqual(['apparmor=unconfined', 'no-new-privileges:true']);
    expect(worker.environment?.KERNEL_NETWORK).toBe('public');
    expect(load({ ...ENV, KERNEL_NETWORK: 'none' }).services.worker.environment?.KERNEL_NETWORK).toBe('none');
    expect(services.api.security_opt).toEqual(['no-new-privileges:true']);
    expect(containerCapabilities(services.api.cap_drop, services.api.cap_add)).toEqual([]);
    expect(services.api.user).toBe('node');
  });

  it('lets a draining worker finish the longest execution before it is killed', () => {
    const maxTimeoutMs = Number(services.api.environment?.MAX_TIMEOUT_MS);
    expect(maxTimeoutMs).toBe(600_000);
    const grace = /^(\d+)s$/.exec(services.worker.stop_grace_period ?? '');
    expect(grace).not.toBeNull();
    // The deadline, the 5 s interrupt-to-kill grace, and time to hand sessions back.
    expect(Number(grace?.[1]) * 1000).toBeGreaterThanOrEqual(maxTimeoutMs + 5_000 + 30_000);
  });

  it('sets only variables the apps read (a typo would be ignored silently)', () => {
    const apiNames = Object.keys(apiEnvSchema.shape);
    const workerNames = Object.keys(workerEnvSchema.shape);
    expect(Object.keys(services.api.environment ?? {}).filter((n) => !apiNames.includes(n))).toEqual([]);
    expect(Object.keys(services.worker.environment ?? {}).filter((n) => !workerNames.includes(n))).toEqual([]);
    for (const name of ['API_KEYS', 'ADMIN_KEY']) expect(Object.keys(services.api.environment ?? {})).toContain(name);
  });

  it('passes API_KEYS and ADMIN_KEY through from the environment or .env', () => {
    const compose2 = load({ ...ENV, API_KEYS: 'me:a-long-secret-key', ADMIN_KEY: 'x'.repeat(40) });
    expect(compose2.services.api.environment?.API_KEYS).toBe('me:a-long-secret-key');
    expect(compose2.services.api.environment?.ADMIN_KEY).toBe('x'.repeat(40));
  });
});
