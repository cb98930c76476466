import { z } from 'zod';
import { TENANT_PATTERN } from '@kernelfleet/contracts';
import { parseRedisTarget } from './redis-target';

/** An IPv4 or IPv6 address range (`a.b.c.d/n`, `x:y::/n`); nftables checks the rest. */
const CIDR = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)\/\d{1,3}$/;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

/** One Redis (`redis://`, `rediss://`) or a Redis Cluster (`redis+cluster://host:port,…`); see redis-target.ts. */
const redisUrl = z
  .string()
  .default('redis://127.0.0.1:6379')
  .superRefine((v, ctx) => {
    try {
      parseRedisTarget(v);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  });

/** `tenant:key,tenant:key` → key → tenant. */
const apiKeys = z
  .string()
  .default('')
  .transform((raw, ctx) => {
    const byKey = new Map<string, string>();
    for (const pair of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
      const at = pair.indexOf(':');
      const tenant = pair.slice(0, at);
      const key = pair.slice(at + 1);
      if (at <= 0 || !TENANT_PATTERN.test(tenant) || key.length < 8) {
        ctx.addIssue({
          code: 'custom',
          message: `"${pair.slice(0, 20)}…" is not tenant:key (tenant [A-Za-z0-9_-], key of 8+ characters)`,
        });
        continue;
      }
      byKey.set(key, tenant);
    }
    return byKey;
  });

const shared = {
  REDIS_URL: redisUrl,
  KEY_PREFIX: z.string().regex(/^[a-z][a-z0-9-]{0,15}$/, 'must be [a-z][a-z0-9-]{0,15}').default('kf'),
  RETENTION_SECONDS: int(60).default(86_400),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  WORKER_LEASE_MS: int(1_000).default(10_000),
  /** BullMQ priorities from each tenant's waiting lane heads (docs/quotas.md); `false` is plain FIFO. */
  FAIR_DISPATCH: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true'),
  /** One session file, at most (docs/files.md): larger uploads get 413. */
  FILE_MAX_BYTES: int(1).default(100 * 1_048_576),
};

/** What every process reading the store needs (the apps, and tools such as the quotas CLI). */
export const storeEnvSchema = z.object(shared);

export const apiEnvSchema = z.object({
  ...shared,
  PORT: int(0, 65_535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  API_KEYS: apiKeys,
  MAX_CODE_BYTES: int(1).default(1_048_576),
  DEFAULT_TIMEOUT_MS: int(1).default(30_000),
  MAX_TIMEOUT_MS: int(1).default(600_000),
  SSE_KEEPALIVE_MS: int(100).default(15_000),
  IDEMPOTENCY_TTL_SECONDS: int(1).default(86_400),
  /** A file operation's deadline when the request names none (its turn in the lane and the transfer). */
  FILE_TIMEOUT_MS: int(1).default(600_000),
  /** A tool call's answer, at most (bytes of its JSON `value`); larger answers get 413. */
  TOOL_RESULT_MAX_BYTES: int(1).default(1_048_576),
  /** Operator key for the /admin endpoints; unset, they do not exist. */
  ADMIN_KEY: z
    .string()
    .regex(/^[\x21-\x7E]{32,512}$/, 'must be 32-512 printable ASCII characters without spaces')
    .optional(),
  /** How long an api replica trusts what it learnt about a stored key (revocation takes this long at most). */
  API_KEY_CACHE_MS: int(0, 60_000).default(5_000),
  QUOTA_LIVE_SESSIONS: int(1).default(1_000),
  QUOTA_PENDING_PER_SESSION: int(1).default(1_000),
  QUOTA_PENDING_PER_TENANT: int(1).default(10_000),
  QUOTA_SUBMITS_PER_SECOND: int(1).default(500),
  QUOTA_SUBMIT_BURST: int(1).default(1_000),
  /** bull-board at /admin/queues may retry, remove, pause or clean jobs; read-only otherwise. */
  ADMIN_QUEUES_WRITABLE: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
});

export const workerEnvSchema = z.object({
  ...shared,
  WORKER_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9._-]')
    .optional(),
  WORKER_CONCURRENCY: int(1, 256).default(4),
  JUPYTER_URL: z.url({ error: 'must be an http(s) URL' }).optional(),
  JUPYTER_TOKEN: z.string().optional(),
  KERNELFLEET_PYTHON: z.string().optional(),
  KERNEL_ROOT_DIR: z.string().optional(),
  /** What uploads may fill a session's folder up to (docs/files.md): beyond it, 413. */
  SESSION_FILES_MAX_BYTES: int(1).default(1_073_741_824),
  INTERRUPT_GRACE_MS: int(100).default(5_000),
  KERNEL_START_MAX_MS: int(1_000).default(10_000),
  /** Kernel starts a worker runs at once, the rest in turn (default: twice the CPUs it sees). */
  KERNEL_STARTS_AT_ONCE: int(1, 256).optional(),
  ARTIFACT_MAX_BYTES: int(1_024).default(64 * 1_048_576),
  REPLAY_MAX_EVENTS: int(100).default(20_000),
  LIVE_OUTPUT_MAX_CHARS: int(1_024).default(16 * 1_048_576),
  MAX_KERNELS: int(1, 10_000).default(32),
  KERNEL_POOL_SIZE: int(0, 1_000).default(2),
  KERNEL_IDLE_MS: int(1_000).default(30 * 60_000),
  /** A full fleet evicts an idle session kernel for a new session only once it was unused this long (docs/capacity.md). */
  KERNEL_EVICT_MIN_IDLE_MS: int(1_000).default(60_000),
  /** How often the worker checks its session kernels against Redis (a disposed or taken session's kernel goes). */
  KERNEL_RECONCILE_MS: int(100, 600_000).default(2_000),
  /** auto: limits, and kernels as users of their own when root; limits: no user switch; off: neither. */
  KERNEL_SANDBOX: z.enum(['auto', 'limits', 'off']).default('auto'),
  KERNEL_SANDBOX_DIR: z.string().optional(),
  /** What kernels may connect to (docs/security.md): public addresses, or nothing at all. */
  KERNEL_NETWORK: z.enum(['public', 'none']).default('public'),
  /** More address ranges kernels may not reach, beside this host's own and the private ones. */
  KERNEL_DENY_EXTRA: z
    .string()
    .default('')
    .transform((raw) => raw.split(/[\s,]+/).filter(Boolean))
    .refine((cidrs) => cidrs.every((c) => CIDR.test(c)), 'must be address ranges such as 203.0.113.0/24 or 2001:db8::/32, separated by spaces'),
  /** A single-tenant development setup: start even where kernels can reach local services or an open Redis. */
  SINGLE_TENANT_DEV: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  KERNEL_UID_BASE: int(1_000, 4_000_000_000).default(2_000_000_000),
  KERNEL_UID_COUNT: int(1, 1_000_000).default(4_096),
  KERNEL_MEMORY_MB: int(0).default(4_096),
  KERNEL_CPU_SECONDS: int(0).default(3_600),
  KERNEL_MAX_PROCESSES: int(0).default(256),
  KERNEL_MAX_FILE_MB: int(0).default(1_024),
  KERNEL_MAX_OPEN_FILES: int(0).default(1_024),
  /** The worker's Prometheus /metrics server (docs/operations.md); 0 turns it off. */
  METRICS_PORT: int(0, 65_535).default(9_464),
  METRICS_HOST: z.string().min(1).default('0.0.0.0'),
});

/** The keys CLI: only where the store is. */
export const keysCliEnvSchema = z.object({ REDIS_URL: shared.REDIS_URL, KEY_PREFIX: shared.KEY_PREFIX });

/** The api variables that set the tenant quota defaults (docs/quotas.md). */
export const quotaEnvSchema = apiEnvSchema.pick({
  MAX_CODE_BYTES: true,
  MAX_TIMEOUT_MS: true,
  QUOTA_LIVE_SESSIONS: true,
  QUOTA_PENDING_PER_SESSION: true,
  QUOTA_PENDING_PER_TENANT: true,
  QUOTA_SUBMITS_PER_SECOND: true,
  QUOTA_SUBMIT_BURST: true,
});
