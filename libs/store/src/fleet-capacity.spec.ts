import { evictingWorker, evictionOrder, fleetIsFull, fleetRoom, noCapacityMessage, roomElsewhere, tenantShares } from './fleet-capacity';
import type { WorkerLease } from './worker-registry';

const lease = (workerId: string, maxKernels: number, tenants: WorkerLease['tenants'], extra: Partial<WorkerLease> = {}): WorkerLease => ({
  workerId,
  bootId: 'b',
  maxKernels,
  kernels: Object.values(tenants ?? {}).reduce((n, [held]) => n + held, 0),
  running: 0,
  concurrency: 4,
  draining: false,
  at: 0,
  ...extra,
  tenants,
});

describe('fleet capacity', () => {
  it('counts the room of the workers that take new sessions (draining ones do not)', () => {
    const leases = [
      lease('w1', 4, { acme: [4, 1, 100] }),
      lease('w2', 4, { acme: [2, 0, 0] }, { admitting: 1 }),
      lease('w3', 4, { acme: [1, 1, 50] }, { draining: true }),
    ];
    expect(fleetRoom(leases)).toEqual({ workers: 2, capacity: 8, held: 7, evictable: 1 });
    expect(roomElsewhere(leases, 'w1')).toBe(true);
    expect(roomElsewhere(leases, 'w2')).toBe(false);
  });

  it('is full only when every slot is taken and nothing may be evicted', () => {
    expect(fleetIsFull(fleetRoom([lease('w1', 2, { acme: [2, 0, 0] })]))).toBe(true);
    expect(fleetIsFull(fleetRoom([lease('w1', 2, { acme: [2, 1, 10] })]))).toBe(false);
    expect(fleetIsFull(fleetRoom([lease('w1', 2, { acme: [1, 0, 0] })]))).toBe(false);
    // No worker at all: nowhere to start a kernel.
    expect(fleetIsFull(fleetRoom([]))).toBe(true);
  });

  it('evicts from the least recently used kernel when no tenant is over its share', () => {
    const leases = [lease('w1', 4, { a: [2, 2, 300], b: [2, 1, 200] }), lease('w2', 4, { c: [2, 1, 100], d: [2, 2, 400] })];
    // Four tenants, 8 slots: a share of 2 each, nobody over it.
    expect(tenantShares(leases).share).toBe(2);
    expect(evictingWorker(leases, tenantShares(leases))).toBe('w2');
  });

  it('evicts from a tenant over its share first, even when another kernel is older', () => {
    // a holds 5 of 8 slots with two tenants (share 4): its newer idle kernel goes before b's older one.
    const leases = [lease('w1', 4, { a: [4, 1, 900] }), lease('w2', 4, { a: [1, 0, 0], b: [3, 1, 100] })];
    const shares = tenantShares(leases);
    expect(shares.held.get('a')).toBe(5);
    expect(evictionOrder({ tenant: 'a', lastUsedAt: 900 }, { tenant: 'b', lastUsedAt: 100 }, shares)).toBeLessThan(0);
    expect(evictingWorker(leases, shares)).toBe('w1');
  });

  it('names no evictor when nothing may be evicted, and breaks ties by worker id', () => {
    expect(evictingWorker([lease('w1', 1, { a: [1, 0, 0] })], tenantShares([]))).toBeNull();
    const tied = [lease('w2', 1, { a: [1, 1, 100] }), lease('w1', 1, { b: [1, 1, 100] })];
    expect(evictingWorker(tied, tenantShares(tied))).toBe('w1');
  });

  it('says what was full in the queue timeout it causes', () => {
    expect(noCapacityMessage({ workers: 2, capacity: 64, held: 64, evictable: 0 }, 60_000)).toBe(
      'Command timed out: no kernel capacity in the fleet (64 of 64 session kernels in use on 2 workers, none idle for 60 s to make room)',
    );
  });
});
