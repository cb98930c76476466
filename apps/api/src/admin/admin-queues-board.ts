import { Inject, Injectable, Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ApiConfig } from '@kernelfleet/config';
import { FleetStore } from '@kernelfleet/store';
import { API_CONFIG } from '../tokens';
import { AdminAccess } from './admin-access';

export const QUEUES_PATH = '/admin/queues';
/** New workers' queues appear on the board within this long (the board's own UI polls its API). */
const REFRESH_MS = 2_000;

/**
 * bull-board at /admin/queues, behind the operator check of the other /admin pages. It is an
 * Express router, so it is mounted on the api's Express instance before Nest's routes
 * (`mount`, called by main.ts), not as a Nest controller. It shows the shared queue and the
 * queue of every registered worker, refreshed as workers come and go; read-only unless
 * ADMIN_QUEUES_WRITABLE=true.
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
   * Mounts the admin pages' Express parts: the login form's body parser and bull-board. Without
   * ADMIN_KEY nothing is mounted, so /admin/queues is an unknown route like any other.
   */
  mount(app: NestExpressApplication): void {
    if (!this.access.sessions) return;
    app.use('/admin/login', express.urlencoded({ extended: false, limit: '4kb' }));
    const serverAdapter = new ExpressAdapter();
    serverAdapter.setBasePath(QUEUES_PATH);
    const { replaceQueues } = createBullBoard({
      queues: [],
      serverAdapter,
      options: { uiConfig: { boardTitle: 'kernelfleet queues', miscLinks: [{ text: 'Fleet', url: '/admin' }] } },
    });
    const refresh = (_req: Request, _res: Response, next: NextFunction) => {
      if (Date.now() - this.refreshedAt < REFRESH_MS) return next();
      this.refreshing ??= this.refresh(replaceQueues).finally(() => (this.refreshing = undefined));
      // A failed refresh (Redis down) keeps the last list; bull-board's own calls say what is wrong.
      this.refreshing.then(() => next(), (error: unknown) => {
        this.logger.warn(`could not list the queues: ${(error as Error).message}`);
        next();
      });
    };
    // An Express app of its own (bull-board's express), which would name itself in every answer.
    const board = serverAdapter.getRouter() as express.Express;
    board.disable('x-powered-by');
    app.use(QUEUES_PATH, this.access.middleware(), refresh, board);
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
