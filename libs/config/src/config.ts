import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { apiEnvSchema, keysCliEnvSchema, quotaEnvSchema, storeEnvSchema, workerEnvSchema } from './env-schema';

const MIB = 1_048_576;

/** Thrown at start-up with one line per bad environment variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

function parse<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const blankless = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = schema.safeParse(blankless);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`),
    );
  }
  return parsed.data;
}

export interface StoreConfig {
  redisUrl: string;
  keyPrefix: string;
  retentionSeconds: number;
  /** A worker is alive while its lease (renewed every third of this) has not expired. */
  workerLeaseMs: number;
  /** Lane heads get BullMQ priorities from their tenant's waiting heads (fair share); else FIFO. */
  fairDispatch: boolean;
}

/**
 * A tenant's quotas (docs/quotas.md). The api's environment gives the defaults; a tenant's
 * overrides in Redis replace them (`maxCodeBytes` and `maxTimeoutMs` only ever lower them).
 */
export interface QuotaLimits {
  /** Sessions with at least one pending (queued or running) execution. */
  liveSessions: number;
  pendingPerSession: number;
  pendingPerTenant: number;
  /** Token bucket: refill rate and size. */
  submitsPerSecond: number;
  submitBurst: number;
  maxCodeBytes: number;
  maxTimeoutMs: number;
}

export interface ApiConfig {
  store: StoreConfig;
  http: { port: number; host: string; sseKeepaliveMs: number };
  auth: {
    /** API_KEYS: keys given in the environment (local use); stored keys live in Redis. */
    tenantByKey: Map<string, string>;
    /** ADMIN_KEY: the operator key of the /admin endpoints, which do not exist without it. */
    adminKey?: string;
    /** How long a replica may answer from what it learnt about a stored key (revocation bound). */
    keyCacheMs: number;
  };
  limits: {
    maxCodeBytes: number;
    defaultTimeoutMs: number;
    maxTimeoutMs: number;
    toolResultMaxBytes: number;
    /** FILE_MAX_BYTES: one session file, at most. */
    fileMaxBytes: number;
    /** FILE_TIMEOUT_MS: a file operation's deadline when the request names none. */
    fileTimeoutMs: number;
  };
  /** Per-tenant defaults; overrides live in Redis. */
  quotas: QuotaLimits;
  idempotencyTtlSeconds: number;
  logLevel: string;
  /** The /admin pages (docs/operations.md, Dashboard); they exist only with `auth.adminKey`. */
  dashboard: { queuesWritable: boolean };
}

export interface WorkerConfig {
  store: StoreConfig;
  workerId: string;
  /** Random per process: tells a restarted worker apart from its previous life (same id). */
  bootId: string;
  concurrency: number;
  /**
   * `rootOwned`: the root is the default folder of this worker's own (KERNEL_ROOT_DIR unset), so
   * whatever is in it is the worker's to delete; a root named by the operator is left as it is,
   * beyond the folders of the sessions the worker held.
   */
  jupyter: { url?: string; token?: string; python: string; rootDir: string; rootOwned: boolean };
  /** What python/kernelfleet_sandbox.py applies to the kernels of the Jupyter server the worker starts. */
  sandbox: {
    mode: 'auto' | 'limits' | 'off';
    /** Host-wide (every worker on the machine shares the uid range): uid locks and private HOMEs. */
    dir: string;
    uidBase: number;
    uidCount: number;
    /** New connections kernels may open: `public` addresses (never this host's or private ones), or `none`. */
    network: 'public' | 'none';
    /** Address ranges kernels may not reach beside this host's own and the private ones. */
    denyExtra: string[];
    /** SINGLE_TENANT_DEV: start even where kernels can reach this host's services or an open Redis. */
    singleTenantDev: boolean;
    limits: { addressSpaceBytes: number; cpuSeconds: number; processes: number; fileSizeBytes: number; openFiles: number };
  };
  kernels: {
    interruptGraceMs: number;
    startMaxMs: number;
    /** Kernel starts run at once; more wait their turn (a start is CPU-bound, about 0.6 s). */
    startsAtOnce: number;
    /** Session kernels this worker holds at most; at capacity it takes no new sessions. */
    maxKernels: number;
    /** Started, idle kernels kept ready for new sessions and per-call executions. */
    poolSize: number;
    /** A session kernel unused this long is shut down; the session's next execution says so. */
    idleMs: number;
    /** A kernel unused this long may be evicted for a new session when the fleet is full. */
    evictMinIdleMs: number;
    /**
     * How often the worker reconciles its session kernels with Redis: a kernel whose session is no
     * longer homed here with that generation (disposed, taken by a reaper) is shut down, and an
     * execution running on it ends. The control message of a disposal is the fast path; this
     * bounds how long a lost one delays the shutdown.
     */
    reconcileMs: number;
  };
  /** Session files (docs/files.md): one file at most, and what uploads may fill a folder up to. */
  files: { maxBytes: number; sessionMaxBytes: number };
  /** liveMaxChars: stream characters sent live per execution (the result and artifact keep the rest). */
  output: { artifactMaxBytes: number; replayMaxEvents: number; liveMaxChars: number };
  logLevel: string;
  /** The worker's own /metrics HTTP server; `port` 0: none. */
  metrics: { port: number; host: string };
}

function storeConfig(e: {
  REDIS_URL: string;
  KEY_PREFIX: string;
  RETENTION_SECONDS: number;
  WORKER_LEASE_MS: number;
  FAIR_DISPATCH: 'true' | 'false';
}): StoreConfig {
  return {
    redisUrl: e.REDIS_URL,
    keyPrefix: e.KEY_PREFIX,
    retentionSeconds: e.RETENTION_SECONDS,
    workerLeaseMs: e.WORKER_LEASE_MS,
    fairDispatch: e.FAIR_DISPATCH === 'true',
  };
}

/** The quota defaults an api started with this environment would apply (for the quotas CLI). */
export function loadQuotaDefaults(env: NodeJS.ProcessEnv = process.env): QuotaLimits {
  const e = parse(quotaEnvSchema, env);
  return {
    liveSessions: e.QUOTA_LIVE_SESSIONS,
    pendingPerSession: e.QUOTA_PENDING_PER_SESSION,
    pendingPerTenant: e.QUOTA_PENDING_PER_TENANT,
    submitsPerSecond: e.QUOTA_SUBMITS_PER_SECOND,
    submitBurst: e.QUOTA_SUBMIT_BURST,
    maxCodeBytes: e.MAX_CODE_BYTES,
    maxTimeoutMs: e.MAX_TIMEOUT_MS,
  };
}

/** Just the Redis side (tools such as the quotas CLI); throws ConfigError listing every bad value. */
export function loadStoreConfig(env: NodeJS.ProcessEnv = process.env): StoreConfig {
  return storeConfig(parse(storeEnvSchema, env));
}

/** Reads and validates the api's environment; throws ConfigError listing every bad value. */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const e = parse(apiEnvSchema, env);
  const problems: string[] = [];
  if (e.DEFAULT_TIMEOUT_MS > e.MAX_TIMEOUT_MS) problems.push('DEFAULT_TIMEOUT_MS: must not exceed MAX_TIMEOUT_MS');
  if (e.ADMIN_KEY !== undefined && e.API_KEYS.has(e.ADMIN_KEY)) problems.push('ADMIN_KEY: must not also be a tenant key in API_KEYS');
  if (e.ADMIN_QUEUES_WRITABLE === 'true' && e.ADMIN_KEY === undefined) problems.push('ADMIN_QUEUES_WRITABLE: needs ADMIN_KEY (without it there are no /admin pages)');
  if (problems.length) throw new ConfigError(problems);
  return {
    store: storeConfig(e),
    http: { port: e.PORT, host: e.HOST, sseKeepaliveMs: e.SSE_KEEPALIVE_MS },
    auth: { tenantByKey: e.API_KEYS, adminKey: e.ADMIN_KEY, keyCacheMs: e.API_KEY_CACHE_MS },
    limits: {
      maxCodeBytes: e.MAX_CODE_BYTES,
      defaultTimeoutMs: e.DEFAULT_TIMEOUT_MS,
      maxTimeoutMs: e.MAX_TIMEOUT_MS,
      toolResultMaxBytes: e.TOOL_RESULT_MAX_BYTES,
      fileMaxBytes: e.FILE_MAX_BYTES,
      fileTimeoutMs: e.FILE_TIMEOUT_MS,
    },
    quotas: loadQuotaDefaults(env),
    idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
    logLevel: e.LOG_LEVEL,
    dashboard: { queuesWritable: e.ADMIN_QUEUES_WRITABLE === 'true' },
  };
}

/** Reads and validates a worker's environment; throws ConfigError listing every bad value. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const e = parse(workerEnvSchema, env);
  if (e.JUPYTER_URL && !e.JUPYTER_TOKEN) {
    throw new ConfigError(['JUPYTER_TOKEN: required when JUPYTER_URL is set']);
  }
  const root = resolve(__dirname, '..', '..', '..', ...(__dirname.includes('/dist/') ? ['..'] : []));
  const workerId = e.WORKER_ID ?? `${hostname()}-${process.pid}`;
  return {
    store: storeConfig(e),
    workerId,
    bootId: randomBytes(6).toString('hex'),
    concurrency: e.WORKER_CONCURRENCY,
    jupyter: {
      url: e.JUPYTER_URL,
      token: e.JUPYTER_TOKEN,
      python: e.KERNELFLEET_PYTHON ?? resolve(root, '.venv', 'bin', 'python'),
      // A folder of the worker's own: its sessions' files are its alone (docs/files.md).
      rootDir: e.KERNEL_ROOT_DIR ?? resolve(root, '.kernelfleet', 'kernels', workerId),
      rootOwned: e.KERNEL_ROOT_DIR === undefined,
    },
    sandbox: {
      mode: e.KERNEL_SANDBOX,
      dir: e.KERNEL_SANDBOX_DIR ?? join(tmpdir(), 'kernelfleet-sandbox'),
      uidBase: e.KERNEL_UID_BASE,
      uidCount: e.KERNEL_UID_COUNT,
      network: e.KERNEL_NETWORK,
      denyExtra: e.KERNEL_DENY_EXTRA,
      singleTenantDev: e.SINGLE_TENANT_DEV === 'true',
      limits: {
        addressSpaceBytes: e.KERNEL_MEMORY_MB * MIB,
        cpuSeconds: e.KERNEL_CPU_SECONDS,
        processes: e.KERNEL_MAX_PROCESSES,
        fileSizeBytes: e.KERNEL_MAX_FILE_MB * MIB,
        openFiles: e.KERNEL_MAX_OPEN_FILES,
      },
    },
    kernels: {
      interruptGraceMs: e.INTERRUPT_GRACE_MS,
      startMaxMs: e.KERNEL_START_MAX_MS,
      startsAtOnce: e.KERNEL_STARTS_AT_ONCE ?? 2 * availableParallelism(),
      maxKernels: e.MAX_KERNELS,
      poolSize: e.KERNEL_POOL_SIZE,
      idleMs: e.KERNEL_IDLE_MS,
      evictMinIdleMs: e.KERNEL_EVICT_MIN_IDLE_MS,
      reconcileMs: e.KERNEL_RECONCILE_MS,
    },
    files: { maxBytes: e.FILE_MAX_BYTES, sessionMaxBytes: e.SESSION_FILES_MAX_BYTES },
    output: { artifactMaxBytes: e.ARTIFACT_MAX_BYTES, replayMaxEvents: e.REPLAY_MAX_EVENTS, liveMaxChars: e.LIVE_OUTPUT_MAX_CHARS },
    logLevel: e.LOG_LEVEL,
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST },
  };
}

/** Reads and validates the keys CLI's environment (REDIS_URL, KEY_PREFIX, as the apps read them). */
export function loadKeysCliConfig(env: NodeJS.ProcessEnv = process.env): { redisUrl: string; keyPrefix: string } {
  const e = parse(keysCliEnvSchema, env);
  return { redisUrl: e.REDIS_URL, keyPrefix: e.KEY_PREFIX };
}
