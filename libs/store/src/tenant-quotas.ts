import type { RedisClient } from './redis-connection';
import type { QuotaLimits } from '@kernelfleet/config';
import { STALE_WAITING_MS, type FairShare } from './fair-share';
import type { ExecutionRef, KeySpace } from './keys';
import { registerScripts, type ScriptRunner } from './scripts';

export type QuotaName = keyof QuotaLimits;

/** The quota names, in the order admit-6.lua takes their defaults (wire contract of the script). */
export const QUOTA_NAMES = [
  'maxCodeBytes', 'maxTimeoutMs', 'liveSessions', 'pendingPerSession', 'pendingPerTenant', 'submitsPerSecond', 'submitBurst',
] as const satisfies readonly QuotaName[];

export function isQuotaName(name: string): name is QuotaName {
  return (QUOTA_NAMES as readonly string[]).includes(name);
}

/**
 * How long after its deadline a pending entry is kept before admit drops it as left by a crash:
 * a running execution ends within the interrupt grace (5 s) and a lost worker's within its lease
 * (10 s) after the deadline, so a live execution is never dropped early.
 */
export const PENDING_GRACE_MS = 60_000;

export interface AdmitRequest {
  ref: ExecutionRef;
  codeBytes: number;
  /** The request's own timeout (from timeoutMs or deadlineAt), or undefined for the default. */
  timeoutMs?: number;
  defaultTimeoutMs: number;
}

export type Admission =
  /**
   * `priority`: the execution will head its lane (its session had nothing pending) and was
   * counted as waiting for fair share; dispatch its job with this priority. Undefined otherwise.
   */
  | { kind: 'admitted'; timeoutMs: number; priority?: number }
  /** Nothing was changed. `retryAfterSeconds` 0: waiting does not help (a static limit). */
  | { kind: 'refused'; quota: QuotaName; limit: number; retryAfterSeconds: number };

export interface QuotaUsage {
  pending: number;
  liveSessions: number;
}

const pendingMember = (ref: ExecutionRef) => `${ref.sessionId}/${ref.executionId}`;

/** What admit.lib.lua answered, as an Admission (its priority 0, not counted as waiting: none). */
export function admissionOf(reply: unknown): Admission {
  const [outcome, a, b, c] = reply as [string, string | number, number, number?];
  if (outcome === 'ok') {
    const priority = Number(b);
    return { kind: 'admitted', timeoutMs: Number(a), priority: priority > 0 ? priority : undefined };
  }
  return { kind: 'refused', quota: a as QuotaName, limit: Number(b), retryAfterSeconds: Number(c) };
}

/**
 * Per-tenant quotas (docs/quotas.md). Everything tenant-wide lives under the tenant's own hash
 * tag, so admission is one script in one slot, apart from the session's accept: admit counts
 * the execution first, accept follows; an execution that is then not accepted (duplicate id) is
 * released again, and one left counted by a crash is dropped by a later admit once its
 * deadline has long passed.
 */
export class TenantQuotas {
  private readonly run: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly fairShare: FairShare,
    /** How long the tenant's sessions index keeps a session after its last admitted submission. */
    private readonly retentionSeconds: number,
  ) {
    this.run = registerScripts(redis);
  }

  /**
   * Checks every quota of the tenant at once and, when all hold, counts the execution as pending,
   * takes a submission token and enters the session in the tenant's sessions index. `now` is for tests; by default the Redis server's clock is
   * used, so api replicas with skewed clocks share one bucket consistently.
   */
  async admit(req: AdmitRequest, defaults: QuotaLimits, now?: number): Promise<Admission> {
    const { keys, args } = this.admitCall(req, defaults, now);
    return admissionOf(await this.run('admit', keys, args));
  }

  /** The keys and arguments of admit.lib.lua for `req` (admit-6.lua, or submit-17.lua's first part). */
  admitCall(req: AdmitRequest, defaults: QuotaLimits, now?: number): { keys: string[]; args: (string | number)[] } {
    const { tenant, sessionId } = req.ref;
    return {
      keys: [this.keys.tenantQuotas(tenant), this.keys.tenantPending(tenant), this.keys.tenantLiveSessions(tenant), this.keys.tenantBucket(tenant),
        this.keys.tenantWaiting(tenant), this.keys.tenantSessions(tenant)],
      args: [pendingMember(req.ref), sessionId, req.codeBytes, req.timeoutMs ?? 0, req.defaultTimeoutMs,
        ...QUOTA_NAMES.map((name) => defaults[name]), now ?? '', PENDING_GRACE_MS,
        this.fairShare.enabled ? req.ref.executionId : '', STALE_WAITING_MS, this.retentionSeconds],
    };
  }

  /**
   * The execution no longer counts (it ended, or was not accepted after all). Idempotent.
   * `nextHeadJobId`: the session's next lane head, about to be dispatched; with fair share on it
   * is counted as waiting in the same step and `priority` is its job's priority.
   */
  async release(ref: ExecutionRef, nextHeadJobId?: string): Promise<{ released: boolean; priority?: number }> {
    const { keys, args } = this.releaseCall(ref, nextHeadJobId);
    const [released, priority] = (await this.run('release', keys, args)) as [number, number];
    return { released: released === 1, priority: priority > 0 ? priority : undefined };
  }

  /**
   * The keys and arguments of release.lib.lua for `ref` (release-3.lua, or the release part of
   * finish-release-10.lua, which puts its finish's next head in as the third argument when
   * `countsNextHead`).
   */
  releaseCall(ref: ExecutionRef, nextHeadJobId?: string): { keys: string[]; args: (string | number)[]; countsNextHead: boolean } {
    const next = this.fairShare.enabled && nextHeadJobId ? nextHeadJobId : '';
    return {
      keys: [this.keys.tenantPending(ref.tenant), this.keys.tenantLiveSessions(ref.tenant), this.keys.tenantWaiting(ref.tenant)],
      args: [pendingMember(ref), ref.sessionId, next, Date.now(), STALE_WAITING_MS],
      countsNextHead: this.fairShare.enabled,
    };
  }

  async overrides(tenant: string): Promise<Partial<QuotaLimits>> {
    const raw = await this.redis.hgetall(this.keys.tenantQuotas(tenant));
    const out: Partial<QuotaLimits> = {};
    for (const [name, value] of Object.entries(raw)) if (isQuotaName(name)) out[name] = Number(value);
    return out;
  }

  async setOverrides(tenant: string, values: Partial<QuotaLimits>): Promise<void> {
    const entries = Object.entries(values).filter(([, v]) => v !== undefined);
    if (entries.length) await this.redis.hset(this.keys.tenantQuotas(tenant), Object.fromEntries(entries));
  }

  /** Drops every override of the tenant: the defaults apply again. */
  async clearOverrides(tenant: string): Promise<void> {
    await this.redis.del(this.keys.tenantQuotas(tenant));
  }

  async usage(tenant: string): Promise<QuotaUsage> {
    const [pending, liveSessions] = await Promise.all([
      this.redis.zcard(this.keys.tenantPending(tenant)),
      this.redis.hlen(this.keys.tenantLiveSessions(tenant)),
    ]);
    return { pending, liveSessions };
  }

  /**
   * Releases every counted execution that has in fact ended (a process died between the finish
   * and the release): `isEnded` reads the execution. Answers how many were released. Entries
   * of executions that do not exist (yet) are left to the admit script's deadline-based drop,
   * since an execution admitted a moment ago may not be accepted yet.
   */
  async repair(tenant: string, isEnded: (ref: ExecutionRef) => Promise<boolean>): Promise<number> {
    const members = await this.redis.zrange(this.keys.tenantPending(tenant), 0, -1);
    let released = 0;
    for (const member of members) {
      const [sessionId, executionId] = member.split('/');
      const ref = { tenant, sessionId, executionId };
      if (sessionId && executionId && (await isEnded(ref)) && (await this.release(ref)).released) released += 1;
    }
    return released;
  }
}
