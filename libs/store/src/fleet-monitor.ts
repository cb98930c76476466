import { Queue } from 'bullmq';
import type { RedisClient } from './redis-connection';
import { SHARED_QUEUE } from '@kernelfleet/contracts';
import { openQueue, workerQueueName } from './dispatcher';
import { fleetIsFull, fleetRoom, type FleetRoom } from './fleet-capacity';
import type { FleetStats, TerminalRates, TimingSummary } from './fleet-stats';
import { decodeRef, type KeySpace } from './keys';
import { parseSessionMember, type KernelState } from './session-repository';
import type { WorkerRegistry } from './worker-registry';

export interface WorkerView {
  workerId: string;
  /** Its lease exists; a registered worker without one is lost (its reaper moves its work on). */
  alive: boolean;
  draining: boolean;
  kernels: number | null;
  maxKernels: number | null;
  concurrency: number | null;
  /** Executions it runs now (its running set; a lost worker's wait for the reaper). */
  running: number;
  /** Sessions homed on it. */
  sessions: number;
  /** Since its last heartbeat (lease renewal); null when lost. */
  heartbeatAgeMs: number | null;
  queue: string;
}

export interface RunningView {
  tenant: string;
  sessionId: string;
  executionId: string;
  workerId: string;
  startedAt: number | null;
}

export interface SessionView {
  tenant: string;
  sessionId: string;
  workerId: string;
  pending: number;
  kernelState: KernelState;
  generation: number;
  lastActivityAt: number | null;
}

export interface QueueView {
  name: string;
  /** Waiting to be taken: BullMQ's wait + prioritized + paused. */
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/** A list cut at a limit: `more` says how many were left out. */
export interface Capped<T> {
  total: number;
  items: T[];
  more: number;
}

/** Kernel pressure (docs/capacity.md): the fleet's slots, and the new sessions waiting for one. */
export interface CapacityView extends FleetRoom {
  /** Lane heads waiting in the shared queue: sessions with no kernel, waiting for a worker to take them. */
  waitingForKernel: number;
  /** Every slot taken and nothing idle long enough to evict: new sessions wait (and time out) until one frees. */
  full: boolean;
}

export interface FleetSnapshot {
  at: number;
  workers: WorkerView[];
  capacity: CapacityView;
  running: Capped<RunningView>;
  sessions: Capped<SessionView>;
  queues: QueueView[];
  rates: TerminalRates;
  timings: TimingSummary;
}

export interface SnapshotLimits {
  sessions: number;
  running: number;
  timingWindowMs: number;
}

/**
 * Read-only views of the fleet for the admin dashboard: workers (leases, running and homed
 * sets), sessions homed on them, running executions, BullMQ queue depths, and the terminal
 * numbers kept by FleetStats. Nothing here changes state. Queue objects for bull-board come
 * from here too (`queues`), so the api still never imports bullmq.
 */
export class FleetMonitor {
  private readonly open = new Map<string, Queue>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly registry: WorkerRegistry,
    private readonly stats: FleetStats,
    private readonly connection: RedisClient,
  ) {}

  /** The shared queue, then the queue of every registered worker (alive or not yet reaped), by name. */
  async queueNames(): Promise<string[]> {
    const ids = await this.redis.zrange(this.keys.workers(), 0, -1);
    return [SHARED_QUEUE, ...ids.map(workerQueueName).sort()];
  }

  /**
   * BullMQ queues by name, opened on first use; queues not named any more are closed (a worker
   * that left the fleet), so a long-lived api does not collect them.
   */
  async queues(names: readonly string[]): Promise<Queue[]> {
    const wanted = new Set(names);
    for (const [name, queue] of this.open) {
      if (!wanted.has(name)) {
        this.open.delete(name);
        await queue.close().catch(() => undefined);
      }
    }
    return names.map((name) => {
      let queue = this.open.get(name);
      if (!queue) {
        queue = openQueue(name, this.connection, this.keys);
        this.open.set(name, queue);
      }
      return queue;
    });
  }

  async snapshot(limits: SnapshotLimits, now = Date.now()): Promise<FleetSnapshot> {
    const members = await this.registry.members();
    const ids = [...members.keys()].sort();
    const sets = this.redis.pipeline();
    for (const id of ids) sets.smembers(this.keys.workerRunning(id)).smembers(this.keys.workerSessions(id));
    const replies = (await sets.exec()) ?? [];
    const setAt = (i: number) => {
      const [error, value] = replies[i] ?? [null, []];
      if (error) throw error;
      return (value as string[]).sort();
    };

    const workers: WorkerView[] = [];
    const running: RunningView[] = [];
    const homed: { tenant: string; sessionId: string; workerId: string }[] = [];
    ids.forEach((workerId, i) => {
      const lease = members.get(workerId) ?? null;
      const runningSet = setAt(2 * i);
      const sessionSet = setAt(2 * i + 1);
      workers.push({
        workerId,
        alive: lease !== null,
        draining: lease?.draining ?? false,
        kernels: lease?.kernels ?? null,
        maxKernels: lease?.maxKernels ?? null,
        concurrency: lease?.concurrency ?? null,
        running: runningSet.length,
        sessions: sessionSet.length,
        heartbeatAgeMs: lease ? Math.max(0, now - lease.at) : null,
        queue: workerQueueName(workerId),
      });
      for (const member of runningSet) {
        const ref = decodeRef(member);
        if (ref) running.push({ ...ref, workerId, startedAt: null });
      }
      for (const member of sessionSet) {
        const ref = parseSessionMember(member);
        if (ref) homed.push({ ...ref, workerId });
      }
    });

    const shownRunning = running.slice(0, limits.running);
    const shownSessions = homed.slice(0, limits.sessions);
    const details = this.redis.pipeline();
    for (const r of shownRunning) details.hget(this.keys.execution(r), 'startedAt');
    for (const s of shownSessions) {
      details.hmget(this.keys.sessionInfo(s), 'generation', 'kernelState', 'lastActivityAt').llen(this.keys.lane(s));
    }
    const [detailReplies, queues, rates, timings] = await Promise.all([
      details.exec(),
      this.queueDepths(await this.queueNames()),
      this.stats.rates(now),
      this.stats.timings(limits.timingWindowMs, now),
    ]);
    const detail = (i: number) => {
      const [error, value] = detailReplies?.[i] ?? [null, null];
      if (error) throw error;
      return value;
    };
    shownRunning.forEach((r, i) => {
      const startedAt = detail(i) as string | null;
      r.startedAt = startedAt ? Number(startedAt) : null;
    });
    const sessions: SessionView[] = shownSessions.map((s, i) => {
      const [generation, kernelState, lastActivityAt] = detail(shownRunning.length + 2 * i) as (string | null)[];
      return {
        ...s,
        pending: Number(detail(shownRunning.length + 2 * i + 1) ?? 0),
        kernelState: (kernelState as KernelState | null) ?? 'none',
        generation: Number(generation ?? 0),
        lastActivityAt: lastActivityAt ? Number(lastActivityAt) : null,
      };
    });

    const room = fleetRoom([...members.values()].filter((l) => l !== null));
    const shared = queues.find((q) => q.name === SHARED_QUEUE);
    return {
      at: now,
      workers,
      capacity: { ...room, waitingForKernel: shared?.waiting ?? 0, full: fleetIsFull(room) },
      running: { total: running.length, items: shownRunning, more: running.length - shownRunning.length },
      sessions: { total: homed.length, items: sessions, more: homed.length - sessions.length },
      queues,
      rates,
      timings,
    };
  }

  private async queueDepths(names: readonly string[]): Promise<QueueView[]> {
    const queues = await this.queues(names);
    return Promise.all(
      queues.map(async (queue) => {
        const c = await queue.getJobCounts('wait', 'prioritized', 'paused', 'active', 'delayed', 'failed');
        return {
          name: queue.name,
          waiting: (c.wait ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0),
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
          failed: c.failed ?? 0,
        };
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.open.values()].map((q) => q.close().catch(() => undefined)));
    this.open.clear();
  }
}
