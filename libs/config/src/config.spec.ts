import { ConfigError, loadApiConfig, loadWorkerConfig } from './config';

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

  it('refuses an api without keys and malformed key pairs', () => {
    expect(() => loadApiConfig({})).toThrow(/API_KEYS/);
    expect(() => loadApiConfig({ API_KEYS: 'no-colon-here' })).toThrow(/API_KEYS/);
    expect(() => loadApiConfig({ API_KEYS: 'acme:short' })).toThrow(/API_KEYS/);
  });

  it('requires a token with an external Jupyter server and bounds worker concurrency', () => {
    expect(() => loadWorkerConfig({ JUPYTER_URL: 'http://127.0.0.1:8888' })).toThrow(/JUPYTER_TOKEN/);
    expect(() => loadWorkerConfig({ WORKER_CONCURRENCY: '0' })).toThrow(/WORKER_CONCURRENCY/);
    const config = loadWorkerConfig({ WORKER_ID: 'w-1', WORKER_CONCURRENCY: '8' });
    expect(config.workerId).toBe('w-1');
    expect(config.concurrency).toBe(8);
    expect(config.kernels.interruptGraceMs).toBe(5_000);
  });
});
