import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { FleetClient, OTHER_TENANT, TEST_TENANT } from '../../support/fleet-client';
import { freePort } from '../../support/redis-server';
import { durationMs, loadComposeServices, type ComposeService } from './compose-services';
import { loopbackOnly, redisImage, testRunLabel, withoutReaper } from '../../support/docker-images';

const docker = promisify(execFile);

/** How many of each container's last lines a fleet that did not start prints. */
const RECENT_LINES = 30;

/** Health is checked every second here (the file says 5-10 s) so the tests do not wait on it. */
const TEST_HEALTH_INTERVAL_MS = 1000;

/**
 * One service of docker-compose.yml as a container: its image, command, environment,
 * healthcheck, user, capabilities, security options, tmpfs, read-only root, init and restart
 * policy; its published ports go to the given free ports on 127.0.0.1 only.
 */
class ServiceContainer extends GenericContainer {
  /** `hostPorts`: one free port per published port, fixed as the file's are, so they outlive restarts. */
  constructor(private readonly service: ComposeService, extraEnv: Record<string, string>, hostPorts: number[] = []) {
    super(service.image);
    this.withLabels(testRunLabel());
    this.withEnvironment({ ...service.environment, ...extraEnv });
    if (service.command) this.withCommand(service.command);
    if (service.user) this.withUser(service.user);
    if (service.cap_drop) this.withDroppedCapabilities(...service.cap_drop);
    if (service.cap_add) this.withAddedCapabilities(...service.cap_add);
    if (service.security_opt) this.withSecurityOpt(...service.security_opt);
    const tmpfs: Record<string, string> = Object.fromEntries((service.tmpfs ?? []).map((path) => [path, '']));
    for (const volume of service.volumes ?? []) {
      if (typeof volume === 'object' && volume.type === 'tmpfs') tmpfs[volume.target] = volume.tmpfs?.size ? `size=${volume.tmpfs.size}` : '';
      // Named volumes (Redis's /data) become the container's own layer: it outlives restarts.
    }
    this.withTmpFs(tmpfs);
    const containerPorts = (service.ports ?? []).map((p) => Number(p.split(':').at(-1)));
    this.withExposedPorts(...containerPorts.map((container, i) => ({ container, host: hostPorts[i] })));
    if (service.healthcheck) {
      this.withHealthCheck({
        test: service.healthcheck.test as ["CMD", ...string[]],
        interval: TEST_HEALTH_INTERVAL_MS,
        timeout: durationMs(service.healthcheck.timeout, 30_000),
        retries: service.healthcheck.retries ?? 3,
        startPeriod: durationMs(service.healthcheck.start_period, 0),
      });
      this.withWaitStrategy(Wait.forHealthCheck()).withStartupTimeout(180_000);
    }
  }

  protected override async beforeContainerCreated(): Promise<void> {
    this.hostConfig.ReadonlyRootfs = this.service.read_only ?? false;
    this.hostConfig.Init = this.service.init ?? false;
    if (this.service.restart) this.hostConfig.RestartPolicy = { Name: this.service.restart };
    loopbackOnly(this.hostConfig); // as the compose file publishes them
  }
}

export interface ContainerFleetOptions {
  /** How many of the file's api replicas (all of them by default). */
  apis?: number;
  workers?: number;
  /** Publishes Redis on a free 127.0.0.1 port too (`redisUrl`), for a benchmark that looks inside. */
  publishRedis?: boolean;
  /** Settings beyond the file's, per service (e.g. a short worker lease). */
  env?: { api?: Record<string, string>; worker?: Record<string, string> };
}

/**
 * docker-compose.yml's stack as containers on a network of its own: Redis, its api replicas
 * and `workers` workers, every one started from the file's settings and healthy before `start`
 * resolves. `docker kill`/`stop`/`start`/`restart` act on them as an operator's would.
 */
export class ContainerFleet extends FleetClient {
  readonly redisPassword = randomBytes(16).toString('hex');
  /** KEY_PREFIX of this fleet's keys in Redis. */
  readonly prefix = `c${randomBytes(4).toString('hex')}`;
  /** Where the host reaches Redis, when `publishRedis` was asked for. */
  redisUrl?: string;
  private network?: StartedNetwork;
  redis?: StartedTestContainer;
  readonly apis: StartedTestContainer[] = [];
  readonly workers: StartedTestContainer[] = [];
  private readonly logs = new Map<string, string[]>();

  static async start(options: ContainerFleetOptions = {}): Promise<ContainerFleet> {
    withoutReaper();
    const fleet = new ContainerFleet();
    try {
      await fleet.boot(options);
    } catch (error) {
      console.log(fleet.recentLogs());
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  private async boot(options: ContainerFleetOptions): Promise<void> {
    const services = loadComposeServices({
      REDIS_PASSWORD: this.redisPassword,
      REDIS_IMAGE: redisImage(),
      KEY_PREFIX: this.prefix,
      API_KEYS: `${TEST_TENANT}:${this.apiKey},${OTHER_TENANT}:${this.otherKey}`,
    });
    this.network = await new Network().start();
    const redisPort = options.publishRedis ? [await freePort()] : [];
    this.redis = await this.service('redis', { ...services.redis, ports: redisPort.map((port) => `${port}:6379`) }, {}, ['redis'], redisPort);
    if (options.publishRedis) this.redisUrl = `redis://:${this.redisPassword}@127.0.0.1:${redisPort[0]}`;
    // The file's api replicas (api, api-2), or the first `apis` of them.
    const apiServices = Object.keys(services).filter((name) => /^api(-\d+)?$/.test(name)).slice(0, options.apis);
    const apiPorts = await Promise.all(apiServices.map(() => freePort()));
    const apis = apiServices.map((name, i) => this.service(name, services[name], { SSE_KEEPALIVE_MS: '1000', ...options.env?.api }, [name], [apiPorts[i]]));
    const workers = Array.from({ length: options.workers ?? 3 }, () => this.service('worker', services.worker, options.env?.worker ?? {}, ['worker']));
    this.apis.push(...(await Promise.all(apis)));
    this.workers.push(...(await Promise.all(workers)));
    this.urls.push(...apiPorts.map((port) => `http://127.0.0.1:${port}`));
  }

  /** Starts one container of a service; `aliases`: the names it answers to, as Compose gives each service's. */
  private async service(kind: string, spec: ComposeService, env: Record<string, string>, aliases: string[], hostPorts: number[] = []): Promise<StartedTestContainer> {
    // Kept from the first line on: a container that never gets healthy is removed, and its
    // output is what says why (recentLogs).
    const lines: string[] = [];
    this.logs.set(`${kind} #${this.logs.size + 1}`, lines);
    const keep = (chunk: Buffer) => {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      if (lines.length > 2 * RECENT_LINES) lines.splice(0, lines.length - RECENT_LINES);
    };
    const container = new ServiceContainer(spec, env, hostPorts)
      .withNetwork(this.network!)
      .withNetworkAliases(...aliases)
      .withLogConsumer((stream) => stream.on('data', keep));
    return container.start();
  }

  /** The worker container whose worker is `workerId` (`<container hostname>-<pid>`). */
  workerContainer(workerId: string): StartedTestContainer {
    const found = this.workers.find((w) => workerId.startsWith(`${w.getId().slice(0, 12)}-`));
    if (!found) throw new Error(`no worker container runs ${workerId}`);
    return found;
  }

  /** `docker <verb> [args] <container>`: kill, stop -t N, start, restart. */
  async docker(verb: string, container: StartedTestContainer, ...args: string[]): Promise<void> {
    await docker('docker', [verb, ...args, container.getId()]);
  }

  /** The container's state as `docker inspect` reports it. */
  async state(container: StartedTestContainer): Promise<{ Status: string; ExitCode: number; Health?: { Status: string } }> {
    const { stdout } = await docker('docker', ['inspect', '--format', '{{json .State}}', container.getId()]);
    return JSON.parse(stdout);
  }

  async waitUntil(container: StartedTestContainer, check: (state: Awaited<ReturnType<ContainerFleet['state']>>) => boolean, timeoutMs = 120_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.state(container);
      if (check(state)) return;
      if (Date.now() > until) throw new Error(`container ${container.getId().slice(0, 12)} still ${JSON.stringify(state)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The last lines each container printed in its first life, for a fleet that did not start. */
  recentLogs(): string {
    return [...this.logs].map(([name, output]) => `--- ${name}\n${output.slice(-RECENT_LINES).join('\n')}`).join('\n');
  }

  /** Everything each container printed, across its restarts (`docker logs`). */
  async allLogs(): Promise<{ name: string; output: string }[]> {
    const named = [['redis', this.redis!] as const, ...this.apis.map((c, i) => [`api-${i + 1}`, c] as const), ...this.workers.map((c, i) => [`worker-${i + 1}`, c] as const)];
    return Promise.all(
      named.map(async ([name, container]) => {
        const { stdout, stderr } = await docker('docker', ['logs', container.getId()], { maxBuffer: 512 * 1024 * 1024 });
        return { name: `${name}-${container.getId().slice(0, 12)}`, output: stdout + stderr };
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.apis, ...this.workers].map((c) => c.stop({ timeout: 10_000 }).catch(() => undefined)));
    await this.redis?.stop().catch(() => undefined);
    await this.network?.stop().catch(() => undefined);
  }
}
