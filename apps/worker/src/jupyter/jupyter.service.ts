import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import type { WorkerConfig } from '@kernelfleet/config';
import { JupyterServer, KernelClient, kernelEnvironment } from '@kernelfleet/kernel';
import { WORKER_CONFIG } from '../tokens';

/**
 * The worker's Jupyter server: the one named by JUPYTER_URL/JUPYTER_TOKEN, or one we spawn on
 * loopback with a random token and supervise (the worker exits if it dies, so the fleet sees
 * the worker as lost rather than a worker without kernels).
 */
@Injectable()
export class JupyterService implements OnApplicationShutdown {
  private readonly logger = new Logger(JupyterService.name);
  private server?: JupyterServer;
  private kernelClient?: KernelClient;
  private stopping = false;

  constructor(@Inject(WORKER_CONFIG) private readonly config: WorkerConfig) {}

  get client(): KernelClient {
    if (!this.kernelClient) throw new Error('Jupyter server not started');
    return this.kernelClient;
  }

  async start(): Promise<void> {
    const { url, token, python, rootDir } = this.config.jupyter;
    if (url && token) {
      this.kernelClient = new KernelClient({ baseUrl: url, token });
      this.logger.log(`using Jupyter server at ${url}`);
      return;
    }
    mkdirSync(rootDir, { recursive: true });
    this.server = await JupyterServer.start({
      python,
      rootDir,
      env: kernelEnvironment(process.env),
      log: (line) => this.logger.debug(line),
    });
    this.kernelClient = new KernelClient({ baseUrl: this.server.url, token: this.server.token });
    this.logger.log(`started Jupyter server pid ${this.server.pid} at ${this.server.url}`);
    void this.server.exited.then(({ code, signal }) => {
      if (this.stopping) return;
      this.logger.error(`Jupyter server exited (code ${code}, signal ${signal}); worker exits`);
      process.exit(70);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.server?.stop();
  }
}
