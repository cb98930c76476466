import { ToolCalls } from './tool-calls';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import calculateSlot, { generateMulti } from 'cluster-key-slot';
import { Command } from 'ioredis';
import type { Execution } from '@kernelfleet/contracts';
import { ApiKeyRepository } from './api-key-repository';
import { ExecutionRepository } from './execution-repository';
import { FairShare } from './fair-share';
import { FleetStats } from './fleet-stats';
import { IdempotencyKeys } from './idempotency-keys';
import { KeySpace, type ExecutionRef } from './keys';
import type { RedisClient } from './redis-connection';
import { SessionRepository } from './session-repository';
import type { Dispatcher } from './dispatcher';
import { ONE_REDIS_ONLY_SCRIPTS, scriptCommand } from './scripts';
import { Submissions } from './submissions';
import { TenantQuotas } from './tenant-quotas';
import { WorkerRegistry } from './worker-registry';

/**
 * Redis Cluster runs a script, a MULTI or a multi-key command only when all its keys hash to one
 * slot (ioredis also refuses a pipeline that spans nodes). This drives every repository method
 * that sends such a group through a connection that records what would be sent (nothing is
 * run) and checks each group's keys with the cluster's own slot function. Every Lua script in
 * ./scripts must be reached, so a new script cannot skip the check, except those named to run
 * on one Redis only, which a Cluster connection must never send.
 */
type Sent = { kind: 'script' | 'multi' | 'pipeline' | 'command'; name: string; keys: string[] };

const SCRIPT_REPLIES: Record<string, unknown> = {
  kf_accept: [1, 1, null, 0],
  kf_claim: ['claimed', 'w1', '1', 'status', 'running', 'seq', '1', 'deadlineAt', '1', 'acceptedAt', '1', 'code', 'x', 'kernelMode', 'session'],
  kf_finish: ['finished', 'ex_next'],
  kf_emit: 1,
  kf_request_cancel: 'signalled',
  kf_rehome: 1,
  kf_requeue: 1,
  kf_release_owner: 'last',
  kf_admit: ['ok', 30_000, 1],
  kf_release: [1, 2],
  kf_dispose: ['w1', 3, 'owner-1'],
  kf_kernel_state: 1,
  kf_evict: 1,
  kf_fair_priority: 1,
};
const oneRedisOnly = ONE_REDIS_ONLY_SCRIPTS.map(scriptCommand);

function reply(command: string): unknown {
  if (command === 'zrange' || command === 'zrangebyscore' || command === 'smembers') return ['one', 'two'];
  if (command === 'hgetall') return { tenant: 'acme', label: '', createdAt: '1' };
  if (command === 'hmget') return ['acme', 'label', '1'];
  if (command === 'get') return null;
  if (command === 'set') return 'OK';
  return 1;
}

const keysOf = (name: string, args: unknown[]): string[] =>
  new Command(name, args as string[]).getKeys().map((k) => k.toString());

/** A stand-in for an ioredis Cluster client that records every command, script and group. */
function recordingClient(sent: Sent[]): RedisClient {
  const scripts = new Map<string, number>();
  const group = (kind: 'multi' | 'pipeline') => {
    const queued: { name: string; keys: string[] }[] = [];
    const chain: unknown = new Proxy(
      {},
      {
        get: (_t, prop: string) =>
          prop === 'exec'
            ? async () => {
                sent.push({ kind, name: queued.map((c) => c.name).join(','), keys: queued.flatMap((c) => c.keys) });
                return queued.map((c) => [null, reply(c.name)]);
              }
            : (...args: unknown[]) => {
                queued.push({ name: prop, keys: keysOf(prop, args) });
                return chain;
              },
      },
    );
    return chain;
  };
  const base: Record<string, unknown> = {
    isCluster: true,
    status: 'ready',
    options: {},
    on: () => base,
    off: () => base,
    multi: () => group('multi'),
    pipeline: () => group('pipeline'),
    defineCommand: (name: string, { numberOfKeys }: { numberOfKeys: number }) => scripts.set(name, numberOfKeys),
  };
  return new Proxy(base, {
    get: (target, prop: string) => {
      if (prop in target) return target[prop];
      if (scripts.has(prop)) {
        return async (...args: unknown[]) => {
          sent.push({ kind: 'script', name: prop, keys: (args as string[]).slice(0, scripts.get(prop)) });
          return SCRIPT_REPLIES[prop];
        };
      }
      return async (...args: unknown[]) => {
        sent.push({ kind: 'command', name: prop, keys: keysOf(prop, args) });
        return reply(prop);
      };
    },
  }) as unknown as RedisClient;
}

describe('Redis Cluster: every script, MULTI and multi-key command stays in one slot', () => {
  const sent: Sent[] = [];
  const redis = recordingClient(sent);
  const keys = new KeySpace('kf');
  const fairShare = new FairShare(redis, keys, true);
  const quotas = new TenantQuotas(redis, keys, fairShare, 60);
  const stats = new FleetStats(redis, keys);
  const executions = new ExecutionRepository(redis, keys, { retentionSeconds: 60, maxReplayEvents: 100 }, quotas, fairShare, stats);
  const sessions = new SessionRepository(redis, keys, 60);
  const registry = new WorkerRegistry(redis, keys, 10_000);
  const apiKeys = new ApiKeyRepository(redis, keys);
  const toolCalls = new ToolCalls(redis, keys, { retentionSeconds: 60, maxReplayEvents: 100 });
  // Where a head goes is the Dispatcher's (BullMQ or a worker's inbox, both covered above).
  const dispatcher = { dispatch: async () => 'kf-shared' } as unknown as Dispatcher;
  const submissions = new Submissions(redis, keys, quotas, executions, dispatcher, registry, fairShare, new IdempotencyKeys(redis, keys));
  const ref: ExecutionRef = { tenant: 'acme', sessionId: 'agent.7:run-2', executionId: 'ex_0123456789abcdef' };
  const execution = { executionId: ref.executionId, sessionId: ref.sessionId, seq: 1, status: 'completed', timings: { acceptedAt: 1, finishedAt: 2 } } as Execution;

  beforeAll(async () => {
    const now = Date.now();
    await quotas.admit({ ref, codeBytes: 8, defaultTimeoutMs: 30_000 }, {
      liveSessions: 10, pendingPerSession: 10, pendingPerTenant: 10, submitsPerSecond: 10, submitBurst: 10, maxCodeBytes: 100, maxTimeoutMs: 60_000,
    });
    for (const ownerId of [undefined, 'owner-1']) {
      await executions.accept({ ...ref, code: 'x', acceptedAt: now, deadlineAt: now + 30_000, kernelMode: 'session', reset: false, retryOnKernelLoss: false, ownerId });
    }
    await submissions.submit(
      {
        ...ref, executionId: 'ex_submitted', code: 'x', acceptedAt: now, kernelMode: 'session', reset: false, retryOnKernelLoss: false, defaultTimeoutMs: 30_000,
        idempotency: { key: 'key-1', record: { fingerprint: 'f', sessionId: ref.sessionId, executionId: 'ex_submitted', claimedAt: now }, ttlSeconds: 60 },
      },
      { liveSessions: 10, pendingPerSession: 10, pendingPerTenant: 10, submitsPerSecond: 10, submitBurst: 10, maxCodeBytes: 100, maxTimeoutMs: 60_000 },
    );
    await executions.markRunningAndClaim(ref, 'w1', 'boot', Date.now);
    await executions.emit(ref, 'stdout', { text: 'hi' });
    await toolCalls.open(ref, { callId: 'tc_1', name: 'read', args: {}, deadlineAt: now + 1_000 }, { type: 'tool_call' });
    await toolCalls.answer(ref, 'tc_1', { ok: true, value: 1 });
    await toolCalls.end(ref, 'tc_1', 'ended');
    await executions.markCodeSent(ref, 'w1', 'boot', 3);
    await executions.requestCancel(ref);
    await executions.requeue(ref, 'w1', 'retry');
    await executions.finish(ref, execution, '');
    await executions.appendArtifact(ref, 'text');
    await sessions.beginGeneration(ref, 'w1');
    await sessions.release(ref, 'w1', 'lost');
    await sessions.evict(ref, 'w1', 3);
    await sessions.releaseOwner(ref, 'owner-1');
    await sessions.clearOwners(ref);
    await sessions.setKernelState(ref, 'w1', 3, 'idle');
    await sessions.homesOf([ref, { tenant: 'acme', sessionId: 'other' }]);
    await sessions.unhome(ref);
    await sessions.indexedSessionsOfTenant('acme');
    await quotas.release(ref, 'ex_next');
    await quotas.repair('acme', async () => true);
    await fairShare.priorityFor('acme', 'ex_next');
    await registry.startHeartbeat('w1', () => ({ bootId: 'b', maxKernels: 1, kernels: 0, running: 0, concurrency: 1, draining: false }));
    await registry.members();
    await registry.forget('w2');
    await registry.stop('w1');
    await apiKeys.create('acme', 'label');
    await apiKeys.list();
    await apiKeys.revoke('key1');
    await stats.record(execution);
    await stats.rates();
  });

  it('reaches every Lua script in ./scripts but those for one Redis only, which it never sends', () => {
    const files = readdirSync(join(__dirname, 'scripts')).filter((f) => /^[a-z-]+-\d+\.lua$/.test(f));
    const scripts = files.map((f) => scriptCommand(f.replace(/-\d+\.lua$/, '')));
    expect(scripts).toEqual(expect.arrayContaining(oneRedisOnly));
    const expected = scripts.filter((name) => !oneRedisOnly.includes(name)).sort();
    expect(expected.length).toBeGreaterThanOrEqual(10);
    expect([...new Set(sent.filter((s) => s.kind === 'script').map((s) => s.name))].sort()).toEqual(expected);
  });

  it('keeps the keys of every script (as many as its file name says), MULTI, pipeline and multi-key command in one slot', () => {
    const crossing = sent.filter((s) => s.keys.length > 1 && generateMulti(s.keys) < 0);
    expect(crossing).toEqual([]);
    // The check itself tells slots apart: the session's keys and a fleet-wide key do not share one.
    expect(generateMulti([keys.lane(ref), keys.deadlines()])).toBe(-1);
    expect(sent.filter((s) => s.kind === 'multi' || s.kind === 'pipeline').length).toBeGreaterThanOrEqual(5);
  });

  it('keeps a session, its tenant and the shared BullMQ queue under hash tags of their own', () => {
    const session = calculateSlot(keys.lane(ref));
    for (const key of [keys.seq(ref), keys.sessionInfo(ref), keys.owners(ref), keys.execution(ref), keys.events(ref), keys.artifact(ref), keys.toolCalls(ref)]) {
      expect(calculateSlot(key)).toBe(session);
    }
    const tenant = calculateSlot(keys.tenantPending('acme'));
    for (const key of [keys.tenantQuotas('acme'), keys.tenantLiveSessions('acme'), keys.tenantBucket('acme'), keys.tenantWaiting('acme'), keys.tenantSessions('acme')]) {
      expect(calculateSlot(key)).toBe(tenant);
    }
    const queue = 'kf-shared';
    const prefix = keys.bullPrefix(queue);
    const bullKeys = ['wait', 'active', 'prioritized', 'meta', 'events', 'marker', 'stalled', 'ex_1', 'ex_1:lock'].map((k) => `${prefix}:${queue}:${k}`);
    expect(generateMulti(bullKeys)).toBe(calculateSlot(`{${queue}}`));
  });
});
