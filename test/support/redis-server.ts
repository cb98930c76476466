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

  private static async spawnReady(url: string, args: string[]): Promise<ChildProcess> {
    const child = spawn(process.env.REDIS_SERVER_BIN ?? 'redis-server', args, { stdio: 'ignore' });
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
