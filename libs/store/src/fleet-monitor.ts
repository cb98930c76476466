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
  /**
   * Waiting to be taken: BullMQ's wait + prioritized + paused; for a worker's inbox, its heads
   * (and `active` the executions running on the worker).
   */
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
 * sets), sessions homed on them, running executions, the depths of the shared queue and of
 * every worker's inbox, and the terminal numbers kept by FleetStats. Nothing here changes state.
 * The shared queue's BullMQ object for bull-board comes from here too (`sharedQueue`), so the
 * api still never imports bullmq.
 */
export class FleetMonitor {
  private shared?: Queue;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly registry: WorkerRegistry,
    private readonly stats: FleetStats,
    private readonly connection: RedisClient,
  ) {}

  /** The shared BullMQ queue (workers' inboxes are sorted sets of ours, not BullMQ queues). */
  sharedQueue(): Queue {
    this.shared ??= openQueue(SHARED_QUEUE, this.connection, this.keys);
    return this.shared;
  }

  async snapshot(limits: SnapshotLimits, now = Date.now()): Promise<FleetSnapshot> {
    const members = await this.registry.members();
    const ids = [...members.keys()].sort();
    const sets = this.redis.pipeline();
    for (const id of ids) sets.smembers(this.keys.workerRunning(id)).smembers(this.keys.workerSessions(id)).zcard(this.keys.workerInbox(id));
    const replies = (await sets.exec()) ?? [];
    const replyAt = (i: number) => {
      const [error, value] = replies[i] ?? [null, null];
      if (error) throw error;
      return value;
    };
    const setAt = (i: number) => ((replyAt(i) as string[] | null) ?? []).sort();

    const workers: WorkerView[] = [];
    const running: RunningView[] = [];
    const homed: { tenant: string; sessionId: string; workerId: string }[] = [];
    const inboxes: QueueView[] = [];
    ids.forEach((workerId, i) => {
      const lease = members.get(workerId) ?? null;
      const runningSet = setAt(3 * i);
      const sessionSet = setAt(3 * i + 1);
      inboxes.push({ name: workerQueueName(workerId), waiting: Number(replyAt(3 * i + 2) ?? 0), active: runningSet.length, delayed: 0, failed: 0 });
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
    const [detailReplies, shared, rates, timings] = await Promise.all([
      details.exec(),
      this.sharedDepth(),
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
    const queues = [shared, ...inboxes.sort((a, b) => a.name.localeCompare(b.name))];
    return {
      at: now,
      workers,
      capacity: { ...room, waitingForKernel: shared.waiting, full: fleetIsFull(room) },
      running: { total: running.length, items: shownRunning, more: running.length - shownRunning.length },
      sessions: { total: homed.length, items: sessions, more: homed.length - sessions.length },
      queues,
      rates,
      timings,
    };
  }

  private async sharedDepth(): Promise<QueueView> {
    const c = await this.sharedQueue().getJobCounts('wait', 'prioritized', 'paused', 'active', 'delayed', 'failed');
    return {
      name: SHARED_QUEUE,
      waiting: (c.wait ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      failed: c.failed ?? 0,
    };
  }

  async close(): Promise<void> {
    await this.shared?.close().catch(() => undefined);
    this.shared = undefined;
  }
}
