import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { FleetClient, OTHER_TENANT, TEST_TENANT } from './fleet-client';
import { freePort } from './redis-server';

const ROOT = join(__dirname, '..', '..');

export { readAnswer, TEST_TENANT, OTHER_TENANT } from './fleet-client';

export interface StackOptions {
  workers?: number;
  workerEnv?: Record<string, string>;
  apiEnv?: Record<string, string>;
  /** Additional api processes sharing the same Redis and prefix. */
  apis?: number;
  /** Each worker leads a process group of its own (AppProcess.start). */
  workerProcessGroups?: boolean;
}

/** A started app process (api or worker) with its captured output. */
export class AppProcess {
  output = '';
  /** A worker's /metrics server (METRICS_PORT), when it has one. */
  metricsUrl?: string;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  /** `ownProcessGroup`: the process leads a group of its own, as under systemd or a terminal (a signal to `-pid` reaches the group). */
  static start(name: string, app: 'api' | 'worker', env: Record<string, string>, ownProcessGroup = false): AppProcess {
    // KF_APP_ROOT: a copy of the compiled apps (bench/app-snapshot.ts), so a long run is not
    // switched to another build halfway when dist/ is rebuilt meanwhile.
    const root = process.env.KF_APP_ROOT ?? ROOT;
    // KF_NODE_ARGS: options for node itself that NODE_OPTIONS does not take (e.g. --cpu-prof).
    const nodeArgs = env.KF_NODE_ARGS ? env.KF_NODE_ARGS.split(' ') : [];
    const child = spawn(process.execPath, [...nodeArgs, '-r', join(root, 'scripts', 'paths.js'), join(root, 'dist', 'apps', app, 'src', 'main.js')], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: ownProcessGroup,
    });
    return new AppProcess(name, child);
  }

  async waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited (${this.child.exitCode}):\n${this.output}`);
      if (Date.now() > until) throw new Error(`${this.name} did not print ${pattern} in time:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The real api and worker processes (compiled dist/) against the test Redis, under a key prefix
 * of their own so test files never see each other's data.
 */
export class Stack extends FleetClient {
  readonly apis: AppProcess[] = [];
  readonly workers: AppProcess[] = [];
  readonly prefix = `t${randomBytes(4).toString('hex')}`;

  static async start(options: StackOptions = {}): Promise<Stack> {
    const stack = new Stack();
    try {
      await stack.boot(options);
    } catch (error) {
      await stack.stop();
      throw error;
    }
    return stack;
  }

  private baseEnv(): Record<string, string> {
    const redisUrl = process.env.KF_TEST_REDIS_URL;
    if (!redisUrl) throw new Error('KF_TEST_REDIS_URL is not set (test/support/global-setup.ts starts Redis)');
    return { REDIS_URL: redisUrl, KEY_PREFIX: this.prefix, LOG_LEVEL: 'warn' };
  }

  private async boot(options: StackOptions): Promise<void> {
    for (let i = 0; i < (options.apis ?? 1); i++) await this.startApi(options.apiEnv);
    for (let i = 0; i < (options.workers ?? 1); i++) await this.startWorker(options.workerEnv, options.workerProcessGroups);
  }

  async startApi(env: Record<string, string> = {}): Promise<AppProcess> {
    const port = await freePort();
    const api = AppProcess.start(`api-${this.apis.length + 1}`, 'api', {
      ...this.baseEnv(),
      PORT: String(port),
      HOST: '127.0.0.1',
      API_KEYS: `${TEST_TENANT}:${this.apiKey},${OTHER_TENANT}:${this.otherKey}`,
      SSE_KEEPALIVE_MS: '1000',
      ...env,
    });
    this.apis.push(api);
    await api.waitForOutput(/listening on/);
    this.urls.push(`http://127.0.0.1:${port}`);
    return api;
  }

  /** Starts a worker; `env.WORKER_ID` reuses an id (a restart of a worker that died), else a new one. */
  async startWorker(env: Record<string, string> = {}, ownProcessGroup = false): Promise<AppProcess> {
    const id = env.WORKER_ID ?? `w${this.workers.length + 1}-${this.prefix}`;
    // Workers of a machine each need a metrics port of their own (the default 9464 is for one per host).
    const metricsPort = env.METRICS_PORT ?? String(await freePort());
    const worker = AppProcess.start(id, 'worker', { ...this.baseEnv(), WORKER_ID: id, WORKER_CONCURRENCY: '4', METRICS_PORT: metricsPort, METRICS_HOST: '127.0.0.1', ...env }, ownProcessGroup);
    if (metricsPort !== '0') worker.metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    this.workers.push(worker);
    await worker.waitForOutput(/ready/, 90_000);
    return worker;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.workers, ...this.apis].map((p) => p.stop()));
  }
}
