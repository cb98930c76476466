/**
 * Kernels run untrusted code on the same host as Redis, so every Redis kernelfleet starts
 * itself requires a password, and the password is on no command line (/proc/<pid>/cmdline is
 * world-readable): the Redis of `npm start` (scripts/embedded-redis.js) and the tests' own
 * (TestRedis), so the suite never runs against an open Redis either.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRedisTarget } from '@kernelfleet/config';
import { pingRedis, startEmbeddedRedis, type EmbeddedRedis } from '../../scripts/embedded-redis';
import { TestRedis } from '../support/redis-server';

/** One raw RESP exchange without AUTH: what any local process (a kernel) could send. */
function unauthenticated(port: number, ...command: string[]): Promise<string> {
  const resp = `*${command.length}\r\n${command.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(3_000, () => socket.destroy(new Error('no answer within 3 s')));
    socket.once('connect', () => socket.write(resp));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.endsWith('\r\n')) {
        socket.destroy();
        resolve(reply.trim());
      }
    });
    socket.on('error', reject);
  });
}

function cmdline(pid: number | undefined): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

describe("the Redis of `npm start` (scripts/embedded-redis.js)", () => {
  let stateDir: string;
  let redis: EmbeddedRedis;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'kf-state-'));
    redis = await startEmbeddedRedis({ stateDir, bin: process.env.REDIS_SERVER_BIN ?? 'redis-server' });
  });
  afterAll(async () => {
    if (redis) await kill(redis.proc);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('refuses every command without the password', async () => {
    expect(await unauthenticated(redis.port, 'PING')).toMatch(/^-NOAUTH /);
    expect(await unauthenticated(redis.port, 'KEYS', '*')).toMatch(/^-NOAUTH /);
    expect(await unauthenticated(redis.port, 'CONFIG', 'GET', 'requirepass')).toMatch(/^-NOAUTH /);
    expect(await unauthenticated(redis.port, 'AUTH', 'not-the-password')).toMatch(/^-WRONGPASS /);
    await expect(pingRedis(`redis://127.0.0.1:${redis.port}`)).rejects.toThrow(/NOAUTH/);
  });

  it('answers the URL it hands to the api and workers, which carries the password', async () => {
    expect(redis.password).toMatch(/^[0-9a-f]{32}$/);
    expect(redis.url).toBe(`redis://:${redis.password}@127.0.0.1:${redis.port}`);
    await expect(pingRedis(redis.url)).resolves.toBeUndefined();
  });

  it('keeps the password in <state dir>/redis-password, mode 0600', () => {
    const file = join(stateDir, 'redis-password');
    expect(readFileSync(file, 'utf8')).toBe(`${redis.password}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('has no password on its command line', () => {
    expect(cmdline(redis.pid)).not.toContain(redis.password);
    expect(cmdline(redis.pid)).toContain('redis-server');
  });

  it('reuses the password on the next start, and replaces one that is not valid', async () => {
    const again = await startEmbeddedRedis({ stateDir, bin: process.env.REDIS_SERVER_BIN ?? 'redis-server' });
    try {
      expect(again.password).toBe(redis.password);
      expect(again.port).not.toBe(redis.port);
      expect(await unauthenticated(again.port, 'PING')).toMatch(/^-NOAUTH /);
      await expect(pingRedis(again.url)).resolves.toBeUndefined();
    } finally {
      await kill(again.proc);
    }

    const file = join(stateDir, 'redis-password');
    writeFileSync(file, 'short\n');
    chmodSync(file, 0o644);
    const replaced = await startEmbeddedRedis({ stateDir, bin: process.env.REDIS_SERVER_BIN ?? 'redis-server' });
    try {
      expect(replaced.password).toMatch(/^[0-9a-f]{32}$/);
      expect(replaced.password).not.toBe(redis.password);
      expect(readFileSync(file, 'utf8')).toBe(`${replaced.password}\n`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      await expect(pingRedis(replaced.url)).resolves.toBeUndefined();
    } finally {
      await kill(replaced.proc);
    }
  });
});

describe("the tests' own Redis (TestRedis)", () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await TestRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('refuses an unauthenticated PING and answers its URL, which carries the password', async () => {
    expect(await unauthenticated(redis.port, 'PING')).toMatch(/^-NOAUTH /);
    expect(redis.url).toBe(`redis://:${redis.password}@127.0.0.1:${redis.port}`);
    await expect(pingRedis(redis.url)).resolves.toBeUndefined();
    expect(cmdline(redis.pid)).not.toContain(redis.password);
  });

  it('is what the suite runs against: KF_TEST_REDIS_URL needs a password too', async () => {
    const target = parseRedisTarget(process.env.KF_TEST_REDIS_URL!);
    const [password, port] =
      target.kind === 'single'
        ? [decodeURIComponent(new URL(target.url).password), Number(new URL(target.url).port)]
        : [target.password, target.nodes[0].port];
    expect(password).toMatch(/^[0-9a-f]{32}$/);
    expect(await unauthenticated(port, 'PING')).toMatch(/^-NOAUTH /);
  });
});
