import { ConfigError, loadApiConfig, loadKeysCliConfig, loadStoreConfig, loadWorkerConfig } from './config';

describe('configuration from the environment', () => {
  it('reads the api defaults and the tenant of each key', () => {
    const config = loadApiConfig({ API_KEYS: 'acme:key-aaaaaaaa,globex:key-bbbbbbbb' });
    expect(config.http.port).toBe(8080);
    expect(config.limits.maxCodeBytes).toBe(1_048_576);
    expect(config.limits.defaultTimeoutMs).toBe(30_000);
    expect(config.store.retentionSeconds).toBe(86_400);
    expect(config.auth.tenantByKey.get('key-bbbbbbbb')).toBe('globex');
  });

  it('lists every bad value at once, naming the variable', () => {
    let error: unknown;
    try {
      loadApiConfig({ API_KEYS: 'acme:key-aaaaaaaa', PORT: 'eighty', REDIS_URL: 'http://x', MAX_CODE_BYTES: '-5' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^PORT: /m);
    expect(problems).toMatch(/^REDIS_URL: /m);
    expect(problems).toMatch(/^MAX_CODE_BYTES: /m);
  });

  it('refuses malformed key pairs; without API_KEYS only stored keys are accepted', () => {
    expect(loadApiConfig({}).auth.tenantByKey.size).toBe(0);
    expect(() => loadApiConfig({ API_KEYS: 'no-colon-here' })).toThrow(/API_KEYS/);
    expect(() => loadApiConfig({ API_KEYS: 'acme:short' })).toThrow(/API_KEYS/);
  });

  it('takes an optional ADMIN_KEY of 32+ characters that is no tenant key, and a key cache bound', () => {
    const admin = 'a'.repeat(32);
    expect(loadApiConfig({}).auth.adminKey).toBeUndefined();
    expect(loadApiConfig({}).auth.keyCacheMs).toBe(5_000);
    expect(loadApiConfig({ ADMIN_KEY: admin, API_KEY_CACHE_MS: '0' }).auth).toMatchObject({ adminKey: admin, keyCacheMs: 0 });
    expect(() => loadApiConfig({ ADMIN_KEY: 'a'.repeat(31) })).toThrow(/ADMIN_KEY/);
    expect(() => loadApiConfig({ ADMIN_KEY: `${'a'.repeat(32)} b` })).toThrow(/ADMIN_KEY/);
    expect(() => loadApiConfig({ ADMIN_KEY: admin, API_KEYS: `acme:${admin}` })).toThrow(/ADMIN_KEY: must not also be a tenant key/);
    expect(() => loadApiConfig({ API_KEY_CACHE_MS: '60001' })).toThrow(/API_KEY_CACHE_MS/);
  });

  it('keeps bull-board read-only unless ADMIN_QUEUES_WRITABLE=true, which needs ADMIN_KEY', () => {
    const admin = 'a'.repeat(32);
    expect(loadApiConfig({ ADMIN_KEY: admin }).dashboard).toEqual({ queuesWritable: false });
    expect(loadApiConfig({ ADMIN_KEY: admin, ADMIN_QUEUES_WRITABLE: 'true' }).dashboard).toEqual({ queuesWritable: true });
    expect(() => loadApiConfig({ ADMIN_KEY: admin, ADMIN_QUEUES_WRITABLE: 'yes' })).toThrow(/ADMIN_QUEUES_WRITABLE: must be true or false/);
    expect(() => loadApiConfig({ ADMIN_QUEUES_WRITABLE: 'true' })).toThrow(/ADMIN_QUEUES_WRITABLE: needs ADMIN_KEY/);
  });

  it('reads the keys CLI settings like the apps do', () => {
    expect(loadKeysCliConfig({})).toEqual({ redisUrl: 'redis://127.0.0.1:6379', keyPrefix: 'kf' });
    expect(() => loadKeysCliConfig({ KEY_PREFIX: 'Bad Prefix' })).toThrow(/KEY_PREFIX/);
  });

  it('requires a token with an external Jupyter server and bounds worker concurrency', () => {
    expect(() => loadWorkerConfig({ JUPYTER_URL: 'http://127.0.0.1:8888' })).toThrow(/JUPYTER_TOKEN/);
    expect(() => loadWorkerConfig({ WORKER_CONCURRENCY: '0' })).toThrow(/WORKER_CONCURRENCY/);
    const config = loadWorkerConfig({ WORKER_ID: 'w-1', WORKER_CONCURRENCY: '8' });
    expect(config.workerId).toBe('w-1');
    expect(config.concurrency).toBe(8);
    expect(config.kernels.interruptGraceMs).toBe(5_000);
    expect(config.kernels.reconcileMs).toBe(2_000);
    expect(loadWorkerConfig({ KERNEL_RECONCILE_MS: '500' }).kernels.reconcileMs).toBe(500);
    expect(() => loadWorkerConfig({ KERNEL_RECONCILE_MS: '50' })).toThrow(/KERNEL_RECONCILE_MS: must be at least 100/);
    expect(() => loadWorkerConfig({ KERNEL_RECONCILE_MS: 'often' })).toThrow(/KERNEL_RECONCILE_MS: must be a number/);
  });

  it('reads the tenant quota defaults and refuses bad ones, naming each', () => {
    const config = loadApiConfig({ API_KEYS: 'acme:key-aaaaaaaa', QUOTA_SUBMITS_PER_SECOND: '20', MAX_TIMEOUT_MS: '60000' });
    expect(config.quotas).toEqual({
      liveSessions: 1_000,
      pendingPerSession: 1_000,
      pendingPerTenant: 10_000,
      submitsPerSecond: 20,
      submitBurst: 1_000,
      maxCodeBytes: 1_048_576,
      maxTimeoutMs: 60_000,
    });
    expect(config.store.fairDispatch).toBe(true);
    expect(loadStoreConfig({ FAIR_DISPATCH: 'false' }).fairDispatch).toBe(false);
    let error: unknown;
    try {
      loadApiConfig({ API_KEYS: 'acme:key-aaaaaaaa', QUOTA_LIVE_SESSIONS: '0', QUOTA_SUBMIT_BURST: 'lots', FAIR_DISPATCH: 'yes' });
    } catch (e) {
      error = e;
    }
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^QUOTA_LIVE_SESSIONS: must be at least 1/m);
    expect(problems).toMatch(/^QUOTA_SUBMIT_BURST: /m);
    expect(problems).toMatch(/^FAIR_DISPATCH: must be true or false/m);
  });

  it('serves worker metrics on 9464 unless METRICS_PORT says otherwise (0: off), refusing bad ports', () => {
    expect(loadWorkerConfig({}).metrics).toEqual({ port: 9_464, host: '0.0.0.0' });
    expect(loadWorkerConfig({ METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' }).metrics).toEqual({ port: 0, host: '127.0.0.1' });
    expect(() => loadWorkerConfig({ METRICS_PORT: '65536' })).toThrow(/METRICS_PORT: must be at most 65535/);
    expect(() => loadWorkerConfig({ METRICS_PORT: 'nine' })).toThrow(/METRICS_PORT/);
  });
});
