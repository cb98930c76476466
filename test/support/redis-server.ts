import { spawn, type ChildProcess } from 'node:child_process';
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

/**
 * A redis-server on a free port for tests: throwaway by default (nothing persisted, killed by
 * `stop()`); `startDurable` persists to an append-only file in its own folder, so `stop()` then
 * `restart()` on the same port brings the same data back (a Redis crash and recovery).
 */
export class TestRedis {
  private constructor(
    readonly url: string,
    readonly port: number,
    private readonly args: string[],
    private child: ChildProcess,
    /** The folder of a durable Redis (removed by `destroy()`), else undefined. */
    readonly dataDir?: string,
  ) {}

  static async start(extraArgs: string[] = []): Promise<TestRedis> {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs];
    const url = `redis://127.0.0.1:${port}`;
    return new TestRedis(url, port, args, await TestRedis.spawnReady(url, args));
  }

  /** AOF with an fsync per write: every acknowledged write survives a SIGKILL. */
  static async startDurable(): Promise<TestRedis> {
    const dataDir = mkdtempSync(join(tmpdir(), 'kf-redis-'));
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'always'];
    const url = `redis://127.0.0.1:${port}`;
    return new TestRedis(url, port, args, await TestRedis.spawnReady(url, args), dataDir);
  }

  private static spawnReady(url: string, args: string[]): Promise<ChildProcess> {
    return TestRedis.spawnReadyAt(process.env.REDIS_SERVER_BIN ?? 'redis-server', url, args);
  }

  /** Starts redis-server with `args` and resolves once `url` answers PING. */
  static async spawnReadyAt(bin: string, url: string, args: string[]): Promise<ChildProcess> {
    const child = spawn(bin, args, { stdio: 'ignore' });
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
    this.child = await TestRedis.spawnReady(this.url, this.args);
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
 * folder, slots assigned by `redis-cli --cluster create`. `url` is the `REDIS_URL` that names
 * it (`redis+cluster://…`). `stop()` kills the nodes and removes their folders.
 */
export class TestRedisCluster {
  private constructor(
    readonly url: string,
    readonly ports: number[],
    private readonly children: ChildProcess[],
    private readonly dir: string,
  ) {}

  static async start(masters = 3): Promise<TestRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'kf-redis-cluster-'));
    const children: ChildProcess[] = [];
    const ports: number[] = [];
    const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
    try {
      for (let i = 0; i < masters; i++) {
        // The cluster bus port is chosen too: the default (port + 10000) may not be free or valid.
        const [port, busPort] = [await freePort(), await freePort()];
        ports.push(port);
        const args = ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000', '--dir', dir];
        children.push(await TestRedis.spawnReadyAt(bin, `redis://127.0.0.1:${port}`, args));
      }
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
      await TestRedisCluster.waitForState(ports);
    } catch (error) {
      for (const child of children) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    return new TestRedisCluster(`redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, ports, children, dir);
  }

  /** Every node says `cluster_state:ok` and knows all the others (slots agreed). */
  private static async waitForState(ports: number[]): Promise<void> {
    const until = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(
        ports.map(async (port) => {
          const node = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null });
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

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}
