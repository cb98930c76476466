import type { StartedTestContainer } from 'testcontainers';
import { ContainerFleet } from '../test/containers/support/container-fleet';
import type { FleetClient } from '../test/support/fleet-client';
import { descendants, processAlive } from '../test/support/processes';
import { Stack, type AppProcess } from '../test/support/stack';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One act of chaos and, for a worker, what it left running. */
export interface Strike {
  at: number;
  /** A worker killed with SIGKILL (`docker kill` for a container), Redis restarted, an api replica killed. */
  kind: 'worker' | 'redis' | 'api';
  target: string;
  /** How the victim came back: a worker under a new id, under the same id, or the same container started again. */
  replacement: 'new-id' | 'same-id' | 'container started';
  /** A worker process's Jupyter server and kernels: how many, and how long the last outlived the kill. */
  orphans?: number;
  orphansGoneAfterMs?: number;
  orphansAliveAt60s?: number;
}

/** What `npm run chaos` runs against: worker processes on this host, or docker-compose.yml's containers. */
export interface ChaosFleet {
  readonly client: FleetClient;
  /** KEY_PREFIX of the fleet's keys. */
  readonly prefix: string;
  /** Where the host reaches the fleet's Redis. */
  readonly redisUrl: string;
  readonly bootErrors: string[];
  readonly strikes: Strike[];
  /** The strike numbered `n` (from 1): kills a worker, and on containers also restarts Redis or kills an api replica at the planned points. */
  strike(n: number, random: () => number): Promise<void>;
  workersUp(): { ready: number; booting: number };
  /** Waits (bounded) for what is still coming back after a strike, so its recovery runs and the checks can read. */
  settle(): Promise<void>;
  logs(): Promise<{ name: string; output: string }[]>;
  summary(): string;
  stop(): Promise<void>;
}

interface WorkerSlot {
  id: string;
  proc?: AppProcess;
  state: 'booting' | 'ready' | 'killed' | 'failed';
}

/** Worker processes (test/support/stack.ts): SIGKILL, replaced under a new id and the same id in turn. */
export class ProcessChaosFleet implements ChaosFleet {
  readonly bootErrors: string[] = [];
  readonly strikes: Strike[] = [];
  readonly client: FleetClient;
  readonly prefix: string;
  readonly redisUrl = process.env.KF_TEST_REDIS_URL!;
  private readonly slots: WorkerSlot[] = [];
  private serial = 0;

  private constructor(private readonly stack: Stack, private readonly workerEnv: Record<string, string>) {
    this.client = stack;
    this.prefix = stack.prefix;
  }

  static async start(workers: number, leaseMs: number): Promise<ProcessChaosFleet> {
    const env = { WORKER_LEASE_MS: String(leaseMs), LOG_LEVEL: 'info' };
    const fleet = new ProcessChaosFleet(await Stack.start({ workers: 0, apiEnv: env }), env);
    for (let i = 0; i < workers; i++) await fleet.startSlot(fleet.newId());
    return fleet;
  }

  private newId(): string {
    return `w${++this.serial}-${this.stack.prefix}`;
  }

  private async startSlot(id: string): Promise<void> {
    const slot: WorkerSlot = { id, state: 'booting' };
    this.slots.push(slot);
    try {
      slot.proc = await this.stack.startWorker({ ...this.workerEnv, WORKER_ID: id });
      if (slot.state === 'booting') slot.state = 'ready';
    } catch (error) {
      slot.state = 'failed';
      this.bootErrors.push(`${id}: ${String(error).slice(0, 2000)}`);
    }
  }

  async strike(_n: number, random: () => number): Promise<void> {
    const ready = this.slots.filter((s) => s.state === 'ready' && s.proc?.child.exitCode === null);
    if (ready.length < 2) return; // never below one live worker
    const victim = ready[Math.floor(random() * ready.length)];
    victim.state = 'killed';
    const below = victim.proc!.child.pid ? descendants(victim.proc!.child.pid) : [];
    const exited = new Promise((r) => victim.proc!.child.once('exit', r));
    victim.proc!.child.kill('SIGKILL');
    await exited;
    const replacement = this.strikes.length % 2 === 0 ? 'new-id' : 'same-id';
    const strike: Strike = { at: Date.now(), kind: 'worker', target: victim.id, replacement, orphans: below.length };
    this.strikes.push(strike);
    // How long the killed worker's Jupyter server and kernels (code still running!) live on.
    void (async () => {
      while (Date.now() - strike.at < 60_000) {
        if (!below.some(processAlive)) {
          strike.orphansGoneAfterMs = Date.now() - strike.at;
          return;
        }
        await sleep(250);
      }
      strike.orphansAliveAt60s = below.filter(processAlive).length;
    })();
    void this.startSlot(replacement === 'same-id' ? victim.id : this.newId());
  }

  workersUp(): { ready: number; booting: number } {
    return { ready: this.slots.filter((s) => s.state === 'ready').length, booting: this.slots.filter((s) => s.state === 'booting').length };
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 100 && this.slots.some((s) => s.state === 'booting'); i++) await sleep(200);
  }

  async logs(): Promise<{ name: string; output: string }[]> {
    const seen = new Map<string, number>();
    return [...this.stack.apis, ...this.stack.workers].map((proc) => {
      const n = (seen.get(proc.name) ?? 0) + 1;
      seen.set(proc.name, n);
      return { name: `${proc.name}${n > 1 ? `.${n}` : ''}`, output: proc.output };
    });
  }

  summary(): string {
    return `${this.strikes.length} workers killed with SIGKILL (${this.strikes.filter((s) => s.replacement === 'same-id').length} restarted under the same id)`;
  }

  async stop(): Promise<void> {
    await this.stack.stop();
  }
}

/**
 * docker-compose.yml's fleet in containers (test/containers/support/container-fleet.ts): each
 * strike `docker kill`s a healthy worker container and starts it again (the same id: its
 * hostname and pid); once, a third of the way in, Redis is restarted (`docker restart`: AOF);
 * once, two thirds in, an api replica is killed and started again a few seconds later.
 */
export class ContainerChaosFleet implements ChaosFleet {
  readonly bootErrors: string[] = [];
  readonly strikes: Strike[] = [];
  readonly client: FleetClient;
  readonly prefix: string;
  readonly redisUrl: string;
  /** Containers killed and not yet healthy again (workers and the api replica). */
  private readonly restarting = new Set<StartedTestContainer>();

  private constructor(
    private readonly fleet: ContainerFleet,
    /** Strike numbers at which Redis restarts and an api replica dies. */
    private readonly redisAt: number,
    private readonly apiAt: number,
  ) {
    this.client = fleet;
    this.prefix = fleet.prefix;
    this.redisUrl = fleet.redisUrl!;
  }

  static async start(options: { workers: number; apis: number; leaseMs: number; expectedStrikes: number }): Promise<ContainerChaosFleet> {
    const fleet = await ContainerFleet.start({
      apis: options.apis,
      workers: options.workers,
      publishRedis: true,
      env: { worker: { WORKER_LEASE_MS: String(options.leaseMs) }, api: { WORKER_LEASE_MS: String(options.leaseMs) } },
    });
    const third = Math.max(1, Math.round(options.expectedStrikes / 3));
    return new ContainerChaosFleet(fleet, third, Math.max(third + 1, 2 * third));
  }

  async strike(n: number, random: () => number): Promise<void> {
    if (n === this.redisAt) {
      this.strikes.push({ at: Date.now(), kind: 'redis', target: 'redis', replacement: 'container started' });
      await this.fleet.docker('restart', this.fleet.redis!);
      return;
    }
    if (n === this.apiAt && this.fleet.apis.length > 1) {
      const api = this.fleet.apis[0];
      this.strikes.push({ at: Date.now(), kind: 'api', target: 'api-1', replacement: 'container started' });
      await this.fleet.docker('kill', api);
      void this.restart(api, 5_000);
      return;
    }
    const states = await Promise.all(this.fleet.workers.map(async (w) => ({ w, s: await this.fleet.state(w) })));
    const healthy = states.filter(({ s }) => s.Status === 'running' && s.Health?.Status === 'healthy').map(({ w }) => w);
    if (healthy.length < 2) return; // never below one live worker
    const victim = healthy[Math.floor(random() * healthy.length)];
    this.strikes.push({ at: Date.now(), kind: 'worker', target: `worker-${this.fleet.workers.indexOf(victim) + 1}`, replacement: 'container started' });
    await this.fleet.docker('kill', victim);
    void this.restart(victim);
  }

  /** Starts a killed container again (after `afterMs`) and waits until it is healthy. */
  private async restart(container: StartedTestContainer, afterMs = 0): Promise<void> {
    this.restarting.add(container);
    try {
      await sleep(afterMs);
      await this.fleet.docker('start', container);
      await this.fleet.waitUntil(container, (s) => s.Health?.Status === 'healthy', 180_000);
    } catch (error) {
      this.bootErrors.push(`${container.getId().slice(0, 12)}: ${String(error).slice(0, 2000)}`);
    } finally {
      this.restarting.delete(container);
    }
  }

  workersUp(): { ready: number; booting: number } {
    const booting = this.fleet.workers.filter((w) => this.restarting.has(w)).length;
    return { ready: this.fleet.workers.length - booting, booting };
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 300 && this.restarting.size > 0; i++) await sleep(200);
  }

  logs(): Promise<{ name: string; output: string }[]> {
    return this.fleet.allLogs();
  }

  summary(): string {
    const of = (kind: Strike['kind']) => this.strikes.filter((s) => s.kind === kind).length;
    return `${of('worker')} worker containers killed and started again, Redis restarted ${of('redis')}x, api replicas killed ${of('api')}x`;
  }

  async stop(): Promise<void> {
    await this.fleet.stop();
  }
}
