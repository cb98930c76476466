import { Inject, Injectable } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { ApiConfig } from '@kernelfleet/config';
import { FleetStore } from '@kernelfleet/store';
import { API_CONFIG } from '../tokens';
import { AdminAccess } from './admin-access';

export const QUEUES_PATH = '/admin/queues';

/**
 * bull-board at /admin/queues, behind the operator check of the other /admin pages. It is a
 * Fastify plugin, so it is registered on the api's Fastify instance (`mount`, called by main.ts),
 * not as a Nest controller. It shows the shared queue, the one BullMQ queue (workers' inboxes are
 * on the fleet page, /admin); read-only unless ADMIN_QUEUES_WRITABLE=true.
 */
@Injectable()
export class AdminQueuesBoard {
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
    const readOnlyMode = !this.config.dashboard.queuesWritable;
    createBullBoard({
      queues: [new BullMQAdapter(this.store.monitor.sharedQueue(), { readOnlyMode })],
      serverAdapter,
      options: { uiConfig: { boardTitle: 'kernelfleet queues', miscLinks: [{ text: 'Fleet', url: '/admin' }] } },
    });
    // The hook of this scope runs before every route of the board registered inside it.
    await app.register(async (scope: FastifyInstance) => {
      scope.addHook('onRequest', this.access.hook());
      await scope.register(serverAdapter.registerPlugin(), { prefix: QUEUES_PATH });
    });
  }
}
