import { Global, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { loadApiConfig, type ApiConfig } from '@kernelfleet/config';
import { FleetStore, QueuesModule } from '@kernelfleet/store';
import { AdminAccess, AdminPageGuard } from './admin/admin-access';
import { AdminDashboardController } from './admin/admin-dashboard.controller';
import { AdminKeysController } from './admin/admin-keys.controller';
import { AdminQueuesBoard } from './admin/admin-queues-board';
import { FleetDashboardService } from './admin/fleet-dashboard.service';
import { AdminKeysService } from './admin/admin-keys.service';
import { AdminGuard } from './auth/admin.guard';
import { ApiKeyGuard } from './auth/api-key.guard';
import { TenantKeysService } from './auth/tenant-keys.service';
import { EventFollower } from './executions/event-follower';
import { ExecutionStreamService } from './executions/execution-stream.service';
import { ExecutionsController } from './executions/executions.controller';
import { ExecutionsService } from './executions/executions.service';
import { FilesModule } from './files/files.module';
import { HealthController } from './health/health.controller';
import { ApiMetrics } from './metrics/api-metrics.service';
import { MetricsController } from './metrics/metrics.controller';
import { OwnersController } from './owners/owners.controller';
import { OwnersService } from './owners/owners.service';
import { ProblemFilter } from './problems/problem.filter';
import { SessionsController } from './sessions/sessions.controller';
import { SessionsService } from './sessions/sessions.service';
import { ToolsModule } from './tools/tools.module';
import { API_CONFIG } from './tokens';

/**
 * What every feature module of the api uses: configuration, the one door to Redis, tenant
 * authentication (ApiKeyGuard) and the problem+json filter.
 */
@Global()
@Module({
  providers: [
    { provide: API_CONFIG, useFactory: () => loadApiConfig() },
    {
      provide: FleetStore,
      inject: [API_CONFIG],
      useFactory: (config: ApiConfig) => FleetStore.connect({ ...config.store, clientName: `api-${process.pid}`, failFast: true }),
    },
    { provide: APP_FILTER, useClass: ProblemFilter },
    {
      provide: TenantKeysService,
      inject: [API_CONFIG, FleetStore],
      useFactory: (config: ApiConfig, store: FleetStore) => new TenantKeysService(config.auth, store.apiKeys),
    },
    ApiKeyGuard,
    ApiMetrics,
    EventFollower,
  ],
  exports: [API_CONFIG, FleetStore, TenantKeysService, ApiKeyGuard, ApiMetrics, EventFollower],
})
export class ApiCoreModule {}

@Module({
  imports: [ApiCoreModule, QueuesModule.forApi(), ToolsModule, FilesModule],
  controllers: [
    ExecutionsController,
    SessionsController,
    OwnersController,
    HealthController,
    AdminKeysController,
    AdminDashboardController,
    MetricsController,
  ],
  providers: [
    AdminGuard,
    AdminKeysService,
    ExecutionStreamService,
    ExecutionsService,
    SessionsService,
    OwnersService,
    AdminAccess,
    AdminPageGuard,
    AdminQueuesBoard,
    FleetDashboardService,
  ],
})
export class AppModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(private readonly store: FleetStore) {}

  /**
   * The store refuses commands until connected: give it a moment before serving, but start
   * anyway when Redis is down (requests answer 503 and /health/ready says so until it is up).
   */
  async onApplicationBootstrap(): Promise<void> {
    await this.store.whenConnected(5_000);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
