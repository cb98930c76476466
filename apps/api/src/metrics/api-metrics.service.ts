import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { FleetStore, fleetRoom, QUEUE_JOB_STATES } from '@kernelfleet/store';
import { CachedValue, createMetricsRegistry, ExecutionMetrics } from '@kernelfleet/telemetry';

/** Queue depths are read from BullMQ at most this often, however often /metrics is scraped. */
export const QUEUE_DEPTH_CACHE_MS = 2_000;

/**
 * The api's metrics (docs/operations.md): accepts, terminal states written here (queued
 * executions cancelled), live SSE clients, and the depth of every BullMQ queue of the fleet.
 */
@Injectable()
export class ApiMetrics {
  readonly registry = createMetricsRegistry();
  readonly executions = new ExecutionMetrics(this.registry);
  private readonly accepted = new Counter({
    name: 'kernelfleet_executions_accepted_total',
    help: 'Executions accepted by this api, by tenant (idempotent replays are not counted)',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  private readonly sseClients = new Gauge({
    name: 'kernelfleet_sse_clients',
    help: 'Clients following an execution\'s events over Server-Sent Events on this api',
    registers: [this.registry],
  });

  constructor(store: FleetStore) {
    store.lanes.onFinished((ref, execution) => this.executions.finished(ref.tenant, execution));
    const depths = new CachedValue(QUEUE_DEPTH_CACHE_MS, () => store.dispatcher.queueDepths());
    new Gauge({
      name: 'kernelfleet_queue_jobs',
      help: 'BullMQ jobs by queue (shared and per worker) and state; every api reports the whole fleet (aggregate with max)',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        try {
          for (const { queue, counts } of await depths.get()) {
            for (const state of QUEUE_JOB_STATES) this.set({ queue, state }, counts[state]);
          }
        } catch {
          // Redis unreachable: no samples rather than a failed scrape (readiness reports the outage).
        }
      },
    });
    new Gauge({
      name: 'kernelfleet_fleet_kernels',
      help:
        'Session kernel slots of the workers that take new sessions, from their leases: capacity (MAX_KERNELS summed), held (or being started), ' +
        'evictable (idle at least KERNEL_EVICT_MIN_IDLE_MS); every api reports the whole fleet (aggregate with max)',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        try {
          const room = fleetRoom(await store.registry.liveLeases());
          this.set({ state: 'capacity' }, room.capacity);
          this.set({ state: 'held' }, room.held);
          this.set({ state: 'evictable' }, room.evictable);
        } catch {
          // Redis unreachable: no samples.
        }
      },
    });
  }

  executionAccepted(tenant: string): void {
    this.accepted.inc({ tenant });
  }

  /** An SSE client attached; call the answer when it leaves. */
  sseClientAttached(): () => void {
    this.sseClients.inc();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.sseClients.dec();
    };
  }
}
