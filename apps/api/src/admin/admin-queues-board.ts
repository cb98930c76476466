import { Inject, Injectable, Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { ApiConfig } from '@kernelfleet/config';
import { FleetStore } from '@kernelfleet/store';
import { API_CONFIG } from '../tokens';
import { AdminAccess } from './admin-access';

export const QUEUES_PATH = '/admin/queues';
/** New workers' queues appear on the board within this long (the board's own UI polls its API). */
const REFRESH_MS = 2_000;

/**
 * bull-board at /admin/queues, behind the operator check of the other /admin pages. It is a
 * Fastify plugin, so it is registered on the api's Fastify instance (`mount`, called by main.ts),
 * not as a Nest controller. It shows the shared queue and the queue of every registered worker,
 * refreshed as workers come and go; read-only unless ADMIN_QUEUES_WRITABLE=true.
 */
@Injectable()
export class AdminQueuesBoard {
  private readonly logger = new Logger(AdminQueuesBoard.name);
  private shownNames = '';
  private refreshedAt = 0;
  private refreshing?: Promise<void>;

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly store: FleetStore,
    private readonly access: AdminAccess,
  ) {}

  /**
   * Registers bull-board, its routes behind the operator check. Without ADMIN_KEY nothing is
   * registered, so /admin/queues is an unknown route like any other.
   */
  async mount(app: NestFastifyApplication): Promise<void> {
    if (!this.access.sessions) return;
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(QUEUES_PATH);
    const { replaceQueues } = createBullBoard({
      queues: [],
      serverAdapter,
      options: { uiConfig: { boardTitle: 'kernelfleet queues', miscLinks: [{ text: 'Fleet', url: '/admin' }] } },
    });
    const refresh: onRequestHookHandler = (_req, _res, done) => {
      if (Date.now() - this.refreshedAt < REFRESH_MS) return done();
      this.refreshing ??= this.refresh(replaceQueues).finally(() => (this.refreshing = undefined));
      // A failed refresh (Redis down) keeps the last list; bull-board's own calls say what is wrong.
      this.refreshing.then(() => done(), (error: unknown) => {
        this.logger.warn(`could not list the queues: ${(error as Error).message}`);
        done();
      });
    };
    // The hooks of this scope run before every route of the board registered inside it.
    await app.register(async (scope: FastifyInstance) => {
      scope.addHook('onRequest', this.access.hook());
      scope.addHook('onRequest', refresh);
      await scope.register(serverAdapter.registerPlugin(), { prefix: QUEUES_PATH });
    });
  }

  private async refresh(replaceQueues: (queues: ReadonlyArray<BullMQAdapter>) => void): Promise<void> {
    const names = await this.store.monitor.queueNames();
    this.refreshedAt = Date.now();
    if (names.join('\n') === this.shownNames) return;
    const readOnlyMode = !this.config.dashboard.queuesWritable;
    const queues = await this.store.monitor.queues(names);
    replaceQueues(queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode })));
    this.shownNames = names.join('\n');
  }
}
