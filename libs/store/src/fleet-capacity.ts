import type { WorkerLease } from './worker-registry';

/**
 * The fleet's room for session kernels, read from the workers' leases (docs/capacity.md). Pure:
 * every worker runs the same rules on the same view, so they agree on who evicts.
 *
 * - A worker is **full** when the kernels it holds and those it is admitting reach `maxKernels`.
 * - A new session goes to a worker with a free slot. Only when no worker has one is an idle
 *   kernel evicted, and only one idle at least `KERNEL_EVICT_MIN_IDLE_MS` with nothing pending.
 * - **Which one**: a tenant's share is the fleet's capacity divided by the number of tenants
 *   holding kernels. Kernels of tenants holding more than their share go first; among equals,
 *   the least recently used. The worker holding the first of that order takes the next new
 *   session and evicts it; the others keep waiting.
 */

/** Session kernels held, admitted and allowed over the workers that take new sessions. */
export interface FleetRoom {
  workers: number;
  capacity: number;
  held: number;
  /** Session kernels that may be evicted (idle long enough, nothing pending). */
  evictable: number;
}

/** An evictable kernel as the fleet sees it: its tenant and when it was last used. */
export interface EvictionCandidate {
  tenant: string;
  lastUsedAt: number;
}

const homes = (leases: Iterable<WorkerLease>) => [...leases].filter((l) => !l.draining);
const taken = (lease: WorkerLease) => lease.kernels + (lease.admitting ?? 0);

export function fleetRoom(leases: Iterable<WorkerLease>): FleetRoom {
  const live = homes(leases);
  let evictable = 0;
  for (const lease of live) for (const [, idle] of Object.values(lease.tenants ?? {})) evictable += idle;
  return {
    workers: live.length,
    capacity: live.reduce((n, l) => n + l.maxKernels, 0),
    held: live.reduce((n, l) => n + taken(l), 0),
    evictable,
  };
}

/** Whether a worker other than `me` has a free slot for a new session. */
export function roomElsewhere(leases: Iterable<WorkerLease>, me: string): boolean {
  return homes(leases).some((l) => l.workerId !== me && taken(l) < l.maxKernels);
}

/** Each tenant's kernels over the fleet, and the share a tenant may hold before it is evicted from first. */
export interface TenantShares {
  share: number;
  held: ReadonlyMap<string, number>;
}

export function tenantShares(leases: Iterable<WorkerLease>): TenantShares {
  const live = homes(leases);
  const held = new Map<string, number>();
  for (const lease of live) {
    for (const [tenant, [count]] of Object.entries(lease.tenants ?? {})) held.set(tenant, (held.get(tenant) ?? 0) + count);
  }
  const capacity = live.reduce((n, l) => n + l.maxKernels, 0);
  return { share: capacity / Math.max(1, held.size), held };
}

/** Orders candidates: those of tenants over their share first, then the least recently used. */
export function evictionOrder(a: EvictionCandidate, b: EvictionCandidate, shares: TenantShares): number {
  const over = (c: EvictionCandidate) => ((shares.held.get(c.tenant) ?? 0) > shares.share ? 0 : 1);
  return over(a) - over(b) || a.lastUsedAt - b.lastUsedAt;
}

/**
 * The worker that should evict for the next new session: the one holding the first candidate
 * fleet-wide (ties by worker id), or null when no kernel may be evicted.
 */
export function evictingWorker(leases: Iterable<WorkerLease>, shares: TenantShares): string | null {
  let best: { workerId: string; candidate: EvictionCandidate } | null = null;
  for (const lease of homes(leases)) {
    for (const [tenant, [, idle, oldestIdleAt]] of Object.entries(lease.tenants ?? {})) {
      if (idle <= 0) continue;
      const candidate = { tenant, lastUsedAt: oldestIdleAt };
      const order = best ? evictionOrder(candidate, best.candidate, shares) : -1;
      if (order < 0 || (order === 0 && lease.workerId < best!.workerId)) best = { workerId: lease.workerId, candidate };
    }
  }
  return best?.workerId ?? null;
}

/**
 * The words of a queue timeout that came from a full fleet (the execution needed a new kernel
 * and none could be had): `Command timed out`, as every queue timeout begins, and the cause.
 */
export function noCapacityMessage(room: FleetRoom, evictMinIdleMs: number): string {
  return (
    `Command timed out: no kernel capacity in the fleet (${room.held} of ${room.capacity} session kernels in use on ` +
    `${room.workers} worker${room.workers === 1 ? '' : 's'}, none idle for ${Math.round(evictMinIdleMs / 1000)} s to make room)`
  );
}

/** Whether the fleet could not give a new session a kernel: every worker full, nothing to evict. */
export function fleetIsFull(room: FleetRoom): boolean {
  return room.held >= room.capacity && room.evictable === 0;
}
