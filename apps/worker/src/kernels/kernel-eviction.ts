import {
  evictingWorker,
  evictionOrder,
  roomElsewhere,
  tenantShares,
  type WorkerLease,
  type WorkerRegistry,
} from '@kernelfleet/store';
import type { SessionEntry } from './session-entry';

/** What this worker says of its session kernels in its lease. */
export type KernelLeaseFields = Pick<WorkerLease, 'kernels' | 'admitting' | 'tenants'>;

/**
 * Which of a worker's session kernels a full fleet may evict, and whether this worker is the one
 * to do it (the rules: libs/store/src/fleet-capacity.ts, docs/capacity.md). The eviction itself
 * is SessionKernels'.
 */
export class KernelEviction {
  constructor(
    private readonly workerId: string,
    private readonly maxKernels: number,
    private readonly minIdleMs: number,
    private readonly registry: WorkerRegistry,
  ) {}

  /** Kernels that may go: no execution holds them and they were unused for the minimum idle time. */
  candidates(entries: Iterable<SessionEntry>, now = Date.now()): SessionEntry[] {
    return [...entries].filter((entry) => !entry.inUse && now - entry.lastUsedAt >= this.minIdleMs);
  }

  /** The lease's figures: kernels held and being admitted, and per tenant held / evictable / oldest. */
  leaseFields(entries: Iterable<SessionEntry>, admitting: number, now = Date.now()): KernelLeaseFields {
    const tenants: NonNullable<WorkerLease['tenants']> = {};
    let kernels = 0;
    for (const entry of entries) {
      kernels += 1;
      const figures = (tenants[entry.ref.tenant] ??= [0, 0, 0]);
      figures[0] += 1;
      if (entry.inUse || now - entry.lastUsedAt < this.minIdleMs) continue;
      figures[1] += 1;
      if (figures[2] === 0 || entry.lastUsedAt < figures[2]) figures[2] = entry.lastUsedAt;
    }
    return { kernels, admitting, tenants };
  }

  /**
   * Whether this worker should take the fleet's next new session by evicting: it is full (the
   * caller checks), no other worker has a free slot, and its own first candidate is the fleet's.
   */
  async isEvictor(own: KernelLeaseFields): Promise<boolean> {
    const leases = await this.fleetWith(own);
    return !roomElsewhere(leases, this.workerId) && evictingWorker(leases, tenantShares(leases)) === this.workerId;
  }

  /** This worker's candidates in the order the fleet evicts them. */
  async ordered(entries: Iterable<SessionEntry>, own: KernelLeaseFields, now = Date.now()): Promise<SessionEntry[]> {
    const shares = tenantShares(await this.fleetWith(own));
    const key = (entry: SessionEntry) => ({ tenant: entry.ref.tenant, lastUsedAt: entry.lastUsedAt });
    return this.candidates(entries, now).sort((a, b) => evictionOrder(key(a), key(b), shares));
  }

  /** The live workers' leases, this worker's own as it is now rather than as last written. */
  private async fleetWith(own: KernelLeaseFields): Promise<WorkerLease[]> {
    const leases = await this.registry.liveLeases();
    const others = leases.filter((l) => l.workerId !== this.workerId);
    const mine = leases.find((l) => l.workerId === this.workerId);
    // Not in the view yet (its first lease is on its way): as it would say of itself.
    const base = mine ?? { workerId: this.workerId, bootId: '', maxKernels: this.maxKernels, running: 0, concurrency: 0, draining: false, at: Date.now() };
    return [...others, { ...base, ...own }];
  }
}
