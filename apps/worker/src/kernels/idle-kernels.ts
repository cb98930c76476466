import type { Logger } from '@nestjs/common';
import type { WorkerConfig } from '@kernelfleet/config';
import type { FleetStore, KernelState, SessionRef } from '@kernelfleet/store';
import { logFields } from '@kernelfleet/telemetry';
import { KernelEviction, type KernelLeaseFields } from './kernel-eviction';
import type { KernelTable } from './kernel-table';
import { cullCheckIntervalMs, PeriodicTask } from './periodic-task';
import { sessionKey, type SessionEntry } from './session-entry';

/** How often a full worker checks whether it is the one to evict for a new session. */
const CAPACITY_CHECK_MS = 1_000;

/**
 * What becomes of idle session kernels: culled after `KERNEL_IDLE_MS` (the session released as
 * `culled`), or evicted for a new session at a full fleet (docs/capacity.md; the rules in
 * {@link KernelEviction}). A kernel an execution holds is never touched.
 */
export class IdleKernels {
  private readonly eviction: KernelEviction;
  private readonly culler: PeriodicTask;
  private readonly capacityCheck: PeriodicTask;
  /** Session kernels culled since the process started; for metrics. */
  culled = 0;
  /** Session kernels evicted for other sessions since the process started; for metrics. */
  evicted = 0;

  constructor(
    private readonly config: WorkerConfig,
    private readonly store: FleetStore,
    private readonly table: KernelTable,
    private readonly logger: Logger,
  ) {
    const { maxKernels, evictMinIdleMs, idleMs } = config.kernels;
    this.eviction = new KernelEviction(config.workerId, maxKernels, evictMinIdleMs, store.registry);
    const log = { warn: (m: string) => logger.warn(m) };
    this.culler = new PeriodicTask('idle kernel check', cullCheckIntervalMs(idleMs), () => this.cull(), log);
    this.capacityCheck = new PeriodicTask('capacity check', CAPACITY_CHECK_MS, () => this.checkCapacity(), log);
  }

  start(): void {
    this.culler.start();
    this.capacityCheck.start();
  }

  stop(): void {
    this.culler.stop();
    this.capacityCheck.stop();
  }

  /** What the worker's lease says of its session kernels (see KernelEviction). */
  leaseFields(now = Date.now()): KernelLeaseFields {
    return this.eviction.leaseFields(this.table.values(), this.table.capacity.admissions, now);
  }

  /**
   * Shuts down session kernels unused for `idleMs` and releases their sessions as `culled`
   * (`dead` if the kernel had died meanwhile): their next execution goes to whichever worker
   * takes it and reports the lost state. Answers how many went.
   */
  async cull(now = Date.now()): Promise<number> {
    const { idleMs } = this.config.kernels;
    const idle = (entry: SessionEntry, at: number) => !entry.inUse && at - entry.lastUsedAt >= idleMs;
    const culls = this.table
      .list()
      .filter(([, entry]) => idle(entry, now))
      .map(([key, entry]) =>
        this.table.locked(key, async () => {
          // Re-checked under the session's lock: an execution may have taken it meanwhile.
          if (this.table.closed || this.table.get(key) !== entry || !idle(entry, Math.max(now, Date.now()))) return false;
          const state: KernelState = entry.handle && !entry.dead ? 'culled' : 'dead';
          const kernelId = entry.handle?.id;
          // Released once the kernel is down, and before the folder goes; the slot is free after both.
          await this.table.retire(key, entry, () => this.store.sessions.release(entry.ref, this.config.workerId, state));
          this.culled += 1;
          this.logger.log(
            logFields(`culled ${state === 'culled' ? `idle kernel ${kernelId}` : 'dead kernel'} of session ${key}`, {
              tenant: entry.ref.tenant,
              sessionId: entry.ref.sessionId,
            }),
          );
          return true;
        }),
      );
    return (await Promise.all(culls)).filter(Boolean).length;
  }

  /**
   * Frees a slot for a session new to this worker when it is full: evicts its idle kernel that
   * goes first by the fleet's rule. Answers false when none may go (the caller puts the job back).
   * Resolves once the evicted session is released in Redis; its kernel's shutdown follows under
   * its lock.
   */
  async makeRoom(ref: SessionRef): Promise<boolean> {
    if (this.table.has(sessionKey(ref)) || !this.table.capacity.isFull(this.table.size)) return true;
    for (const entry of await this.eviction.ordered(this.table.values(), this.leaseFields())) {
      if (await this.evict(entry)) return true;
    }
    this.table.capacity.setEvictor(false, this.table.size);
    return false;
  }

  /**
   * Evicts a session kernel for another session, if it still may go: unused for the minimum idle
   * time, nothing running, and (evict-2.lua) nothing pending. Answers true once its slot is free:
   * the session is released in Redis (state `evicted`) or was no longer homed here; the kernel's
   * shutdown and the folder's removal go on under the session's lock.
   */
  private evict(entry: SessionEntry): Promise<boolean> {
    const key = sessionKey(entry.ref);
    return new Promise<boolean>((freed, failed) => {
      void this.table
        .locked(key, async () => {
          const still = this.table.get(key) === entry && this.eviction.candidates([entry]).length === 1;
          if (this.table.closed || !still) return freed(false);
          const outcome = await this.store.sessions.evict(entry.ref, this.config.workerId, entry.generation);
          if (outcome === 'busy') return freed(false);
          // Both take the entry out at once, so the slot is free as soon as `freed` is heard.
          freed(true);
          if (outcome === 'moved') return this.table.drop(key, entry, 'reconcile', true);
          this.evicted += 1;
          this.logger.log(
            logFields(`evicted idle kernel ${entry.handle?.id ?? '(dead)'} of session ${key} to make room for another session`, {
              tenant: entry.ref.tenant,
              sessionId: entry.ref.sessionId,
              idleMs: Date.now() - entry.lastUsedAt,
            }),
          );
          await this.table.retire(key, entry, undefined, true);
        })
        .catch(failed);
    });
  }

  /**
   * Each second while full: whether this worker is the one to evict for the fleet's next new
   * session (then it takes one from the shared queue), else it keeps its shared queue paused.
   */
  private async checkCapacity(): Promise<void> {
    const { capacity } = this.table;
    const held = this.table.size;
    if (this.table.closed || !capacity.isFull(held) || this.eviction.candidates(this.table.values()).length === 0) {
      capacity.setEvictor(false, held);
      return;
    }
    capacity.setEvictor(await this.eviction.isEvictor(this.leaseFields()), this.table.size);
  }
}
