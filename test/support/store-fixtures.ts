import { randomBytes } from 'node:crypto';
import { FleetStore, type AcceptRequest } from '@kernelfleet/store';

/** A key prefix of its own, so integration test files never see each other's keys. */
export function testPrefix(name: string): string {
  return `${name}${randomBytes(3).toString('hex')}`;
}

/** A FleetStore on the test Redis (KF_TEST_REDIS_URL, started by global-setup). */
export function connectStore(keyPrefix: string, clientName: string): FleetStore {
  const redisUrl = process.env.KF_TEST_REDIS_URL;
  if (!redisUrl) throw new Error('KF_TEST_REDIS_URL is not set');
  return FleetStore.connect({ redisUrl, keyPrefix, retentionSeconds: 600, workerLeaseMs: 10_000, clientName });
}

/** A session-mode request of tenant `acme` due in 30 s, with any field overridden. */
export function acceptRequest(sessionId: string, overrides: Partial<AcceptRequest> = {}): AcceptRequest {
  const now = Date.now();
  return {
    tenant: 'acme',
    sessionId,
    code: 'print(1)',
    acceptedAt: now,
    deadlineAt: now + 30_000,
    kernelMode: 'session',
    reset: false,
    retryOnKernelLoss: false,
    ...overrides,
  };
}
