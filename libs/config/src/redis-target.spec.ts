import { loadStoreConfig } from './config';
import { parseRedisTarget } from './redis-target';

describe('REDIS_URL: one Redis or a Redis Cluster', () => {
  it('keeps a redis:// or rediss:// URL as it is', () => {
    expect(parseRedisTarget('redis://:secret@10.0.0.1:6380/2')).toEqual({ kind: 'single', url: 'redis://:secret@10.0.0.1:6380/2' });
    expect(parseRedisTarget('rediss://cache.example')).toEqual({ kind: 'single', url: 'rediss://cache.example' });
  });

  it('reads the seed nodes and credentials of a redis+cluster:// URL', () => {
    expect(parseRedisTarget('redis+cluster://127.0.0.1:7000,127.0.0.1:7001/')).toEqual({
      kind: 'cluster',
      nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }],
      tls: false,
    });
    expect(parseRedisTarget('rediss+cluster://app:p%40ss@redis-0.redis:6379,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'redis-0.redis', port: 6379 }, { host: '::1', port: 7002 }],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
    expect(parseRedisTarget('redis+cluster://:only-password@h:1')).toMatchObject({ password: 'only-password' });
  });

  it('refuses a cluster URL without host:port nodes, naming the bad part, at start-up', () => {
    expect(() => parseRedisTarget('redis+cluster://')).toThrow(/at least one host:port/);
    expect(() => parseRedisTarget('redis+cluster://h1:7000,h2')).toThrow(/"h2" is not host:port/);
    expect(() => parseRedisTarget('redis+cluster://h1:70000')).toThrow(/is not host:port/);
    expect(() => loadStoreConfig({ REDIS_URL: 'redis+cluster://h1' })).toThrow(/REDIS_URL: "h1" is not host:port/);
    expect(() => loadStoreConfig({ REDIS_URL: 'http://h1:7000' })).toThrow(/REDIS_URL: must be a redis:\/\//);
    expect(loadStoreConfig({ REDIS_URL: 'redis+cluster://h1:7000' }).redisUrl).toBe('redis+cluster://h1:7000');
  });
});
