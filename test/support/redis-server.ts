import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';

/** A free loopback TCP port (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A random Redis password (hex: safe in a URL and in a redis.conf line as is). */
export function randomRedisPassword(): string {
  return randomBytes(16).toString('hex');
}

/**
 * A redis-server on a free port for tests: throwaway by default (nothing persisted, killed by
 * `stop()`); `startDurable` persists to an append-only file in its own folder, so `stop()` then
 * `restart()` on the same port brings the same data back (a Redis crash and recovery).
 * Either requires a random `password` (kernels run on this host too), given to redis-server on
 * its stdin, never on its command line; `url` carries it.
 */
export class TestRedis {
  private constructor(
    readonly url: string,
    readonly port: number,
    readonly password: string,
    private readonly args: string[],
    private child: ChildProcess,
    /** The folder of a durable Redis (removed by `destroy()`), else undefined. */
    readonly dataDir?: string,
  ) {}

  static async start(extraArgs: string[] = []): Promise<TestRedis> {
    const port = await freePort();
    const password = randomRedisPassword();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs];
    const url = `redis://:${password}@127.0.0.1:${port}`;
    return new TestRedis(url, port, password, args, await TestRedis.spawnReady(url, args, password));
  }

  /** AOF with an fsync per write: every acknowledged write survives a SIGKILL. */
  static async startDurable(): Promise<TestRedis> {
    const dataDir = mkdtempSync(join(tmpdir(), 'kf-redis-'));
    const port = await freePort();
    const password = randomRedisPassword();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'always'];
    const url = `redis://:${password}@127.0.0.1:${port}`;
    return new TestRedis(url, port, password, args, await TestRedis.spawnReady(url, args, password), dataDir);
  }

  private static spawnReady(url: string, args: string[], password: string): Promise<ChildProcess> {
    return TestRedis.spawnReadyAt(process.env.REDIS_SERVER_BIN ?? 'redis-server', url, args, `requirepass ${password}\n`);
  }

  /**
   * Starts redis-server with `args`, and `config` (redis.conf lines: the secrets) on its stdin
   * (`redis-server -`), and resolves once `url` (with the password, if any) answers PING.
   */
  static async spawnReadyAt(bin: string, url: string, args: string[], config = ''): Promise<ChildProcess> {
    const child = spawn(bin, ['-', ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin?.on('error', () => undefined); // it died before reading: the wait below says so
    child.stdin?.end(config);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    const until = Date.now() + 10_000;
    for (;;) {
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return child;
      } catch (error) {
        probe.disconnect();
        if (Date.now() > until || child.exitCode !== null) throw new Error(`redis-server did not start: ${error}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Kills the server (SIGKILL: no shutdown save, like a crash). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Starts the server again on the same port with the same arguments (and data folder). */
  async restart(): Promise<void> {
    await this.stop();
    this.child = await TestRedis.spawnReady(this.url, this.args, this.password);
  }

  /** Stops the server and removes its data folder. */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * A Redis Cluster of three masters (no replicas) on free loopback ports, for running the suite
 * the way a large installation runs: every node a redis-server in cluster mode with its own
 * folder, slots assigned by `redis-cli --cluster create`. Every node requires one random
 * `password` (`requirepass`, and `masterauth` for replication), given on stdin like TestRedis's.
 * `url` is the `REDIS_URL` that names it (`redis+cluster://:<password>@…`). `stop()` kills the
 * nodes and removes their folders.
 */
export class TestRedisCluster {
  private constructor(
    readonly url: string,
    readonly password: string,
    readonly ports: number[],
    private readonly children: ChildProcess[],
    private readonly dir: string,
  ) {}

  static async start(masters = 3): Promise<TestRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'kf-redis-cluster-'));
    const children: ChildProcess[] = [];
    const ports: number[] = [];
    const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
    const password = randomRedisPassword();
    try {
      for (let i = 0; i < masters; i++) {
        // The cluster bus port is chosen too: the default (port + 10000) may not be free or valid.
        const [port, busPort] = [await freePort(), await freePort()];
        ports.push(port);
        const args = ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000', '--dir', dir];
        const config = `requirepass ${password}\nmasterauth ${password}\n`;
        children.push(await TestRedis.spawnReadyAt(bin, `redis://:${password}@127.0.0.1:${port}`, args, config));
      }
      // redis-cli takes the password from REDISCLI_AUTH (never `-a`: command lines are public).
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
        REDISCLI_AUTH: password,
      });
      await TestRedisCluster.waitForState(ports, password);
    } catch (error) {
      for (const child of children) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const url = `redis+cluster://:${password}@${ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
    return new TestRedisCluster(url, password, ports, children, dir);
  }

  /** Every node says `cluster_state:ok` and knows all the others (slots agreed). */
  private static async waitForState(ports: number[], password: string): Promise<void> {
    const until = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(
        ports.map(async (port) => {
          const node = new Redis(port, '127.0.0.1', { password, maxRetriesPerRequest: 0, retryStrategy: () => null });
          node.on('error', () => undefined);
          try {
            const info = (await node.call('CLUSTER', 'INFO')) as string;
            return /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${ports.length}\\b`).test(info);
          } catch {
            return false;
          } finally {
            node.disconnect();
          }
        }),
      );
      if (states.every(Boolean)) return;
      if (Date.now() > until) throw new Error('the Redis Cluster did not reach cluster_state:ok within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}
