import type { StateLostReason } from '@kernelfleet/contracts';
import type { RedisClient } from './redis-connection';
import type { KeySpace, SessionRef } from './keys';
import { registerScripts, type ScriptRunner } from './scripts';

/** What taking an owner off a session did (see release-owner-1.lua). */
export type OwnerRelease = 'not_owner' | 'detached' | 'last';

/**
 * `lost`: its worker or Jupyter server went away; `culled`: idle too long; `evicted`: shut down
 * to make room for another session (docs/capacity.md); `dead`: died or killed.
 */
export type KernelState = 'none' | 'starting' | 'idle' | 'dead' | 'lost' | 'culled' | 'evicted';

/** Why the state of a session whose kernel is in `state` went away (null: it did not, or was asked to). */
export function stateLostReasonOf(state: KernelState): StateLostReason | null {
  switch (state) {
    case 'evicted':
    case 'culled':
    case 'lost':
      return state;
    case 'dead':
      return 'died';
    default:
      return null;
  }
}

/** What evicting a session's kernel did (evict-2.lua). */
export type Eviction = 'evicted' | 'busy' | 'moved';

/**
 * Where the session's files are (docs/files.md): `kept` in its folder on its home worker; `lost`
 * with its kernel (its worker was lost or drained, or the kernel was culled); `none` when it
 * never had any or was disposed.
 */
export type SessionFilesState = 'kept' | 'lost' | 'none';

export interface SessionInfo {
  sessionId: string;
  workerId: string | null;
  kernel: { generation: number; state: KernelState };
  files: SessionFilesState;
  pending: number;
  lastActivityAt: number | null;
}

const sessionMember = (ref: SessionRef) => `${ref.tenant}/${ref.sessionId}`;

export function parseSessionMember(member: string): SessionRef | null {
  const slash = member.indexOf('/');
  if (slash <= 0 || slash === member.length - 1) return null;
  return { tenant: member.slice(0, slash), sessionId: member.slice(slash + 1) };
}

/**
 * The session's kernel bookkeeping: which worker is its home, which kernel generation it is on.
 * A worker also keeps the set of sessions homed on it, so failover and drain can find them.
 */
export class SessionRepository {
  private readonly run: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly retentionSeconds: number,
  ) {
    this.run = registerScripts(redis);
  }

  async get(ref: SessionRef): Promise<SessionInfo | null> {
    const [info, pending] = await Promise.all([
      this.redis.hgetall(this.keys.sessionInfo(ref)),
      this.redis.llen(this.keys.lane(ref)),
    ]);
    if (!info.lastActivityAt && pending === 0) return null;
    const state = (info.kernelState as KernelState) ?? 'none';
    return {
      sessionId: ref.sessionId,
      workerId: info.home || null,
      kernel: { generation: Number(info.generation ?? 0), state },
      files: info.home ? 'kept' : state === 'lost' || state === 'culled' || state === 'evicted' ? 'lost' : 'none',
      pending,
      lastActivityAt: info.lastActivityAt ? Number(info.lastActivityAt) : null,
    };
  }

  /**
   * Whether the session's latest kernel ever received code: only then does losing it lose state
   * (a kernel that died while starting, or before its first execution, held nothing).
   */
  async latestKernelWasUsed(ref: SessionRef): Promise<boolean> {
    const [generation, used] = await this.redis.hmget(this.keys.sessionInfo(ref), 'generation', 'usedGeneration');
    return Number(generation ?? 0) > 0 && Number(used ?? 0) >= Number(generation ?? 0);
  }

  /**
   * A loss of state the client has not been told about yet, with its reason: set when a new
   * kernel replaces one that held state, cleared once a result saying `stateLost` is written. It
   * carries the news across a replacement kernel that is itself lost before any result (a chain
   * of failovers). Null when none is pending.
   */
  async pendingStateLoss(ref: SessionRef): Promise<StateLostReason | null> {
    const pending = await this.redis.hget(this.keys.sessionInfo(ref), 'stateLossPending');
    if (!pending) return null;
    // '1': written before losses had reasons.
    return pending === '1' ? 'lost' : (pending as StateLostReason);
  }

  async setStateLossPending(ref: SessionRef, reason: StateLostReason | null): Promise<void> {
    if (reason) await this.redis.hset(this.keys.sessionInfo(ref), 'stateLossPending', reason);
    else await this.redis.hdel(this.keys.sessionInfo(ref), 'stateLossPending');
  }

  async homeOf(ref: SessionRef): Promise<string | null> {
    return (await this.redis.hget(this.keys.sessionInfo(ref), 'home')) || null;
  }

  /**
   * Whether the session is still homed on `workerId` with kernel `generation`: false once a
   * reaper took it away (the worker's lease lapsed) or another kernel replaced it.
   */
  async isHeldBy(ref: SessionRef, workerId: string, generation: number): Promise<boolean> {
    const [home, current] = await this.redis.hmget(this.keys.sessionInfo(ref), 'home', 'generation');
    return home === workerId && Number(current ?? 0) === generation;
  }

  /**
   * A worker has started a new kernel for the session: the next generation, homed on that
   * worker, its kernel `idle`. The session joins the worker's set in the same round trip (sent
   * together; on one Redis they run in order).
   */
  async beginGeneration(ref: SessionRef, workerId: string): Promise<number> {
    const key = this.keys.sessionInfo(ref);
    const [replies] = await Promise.all([
      this.redis.multi().hincrby(key, 'generation', 1).hset(key, 'home', workerId, 'kernelState', 'idle').expire(key, this.retentionSeconds).exec(),
      this.redis.sadd(this.keys.workerSessions(workerId), sessionMember(ref)),
    ]);
    const [[error, generation]] = replies as [[Error | null, number], ...unknown[]];
    if (error) throw error;
    return generation;
  }

  /**
   * Records the state of the session's kernel `generation` on `workerId`, only while the session
   * is still homed there with that generation (kernel-state-1.lua): a session disposed or taken
   * away meanwhile keeps the state decided for it. Answers whether it was written.
   */
  async setKernelState(ref: SessionRef, workerId: string, generation: number, state: KernelState): Promise<boolean> {
    return (await this.run('kernel-state', [this.keys.sessionInfo(ref)], [workerId, generation, state])) === 1;
  }

  /**
   * Where each session is homed and on which kernel generation (null home: none), in the order
   * asked. One HMGET per session, all sent at once: one round trip on one Redis (the sessions
   * live in as many slots as there are sessions, so on a cluster they go to their nodes together).
   */
  async homesOf(refs: SessionRef[]): Promise<{ home: string | null; generation: number }[]> {
    const replies = await Promise.all(refs.map((ref) => this.redis.hmget(this.keys.sessionInfo(ref), 'home', 'generation')));
    return replies.map(([home, generation]) => ({ home: home || null, generation: Number(generation ?? 0) }));
  }

  /**
   * Un-homes the session for a disposal (dispose-2.lua): home cleared, kernel state `none`, a
   * pending state loss dropped, owners cleared — then the session leaves its old home's set and
   * the owners' index entries go. Answers the old home (the worker to tell), if any.
   */
  async unhome(ref: SessionRef): Promise<{ home: string | null; generation: number; owners: string[] }> {
    const [home, generation, ...owners] = (await this.run('dispose', [this.keys.sessionInfo(ref), this.keys.owners(ref)], [])) as [
      string,
      number,
      ...string[],
    ];
    await Promise.all([
      home ? this.redis.srem(this.keys.workerSessions(home), sessionMember(ref)) : undefined,
      ...owners.map((ownerId) => this.unindexOwner(ref, ownerId)),
    ]);
    return { home: home || null, generation: Number(generation), owners: owners.sort() };
  }

  /**
   * The tenant's sessions whose last admitted execution ended (or will end) within the retention
   * window (the tenant's sessions index, written by admit-6.lua), sorted. A superset of those with
   * a kernel or pending executions: each must be checked against its own keys.
   */
  async indexedSessionsOfTenant(tenant: string, now = Date.now()): Promise<string[]> {
    const members = await this.redis.zrangebyscore(this.keys.tenantSessions(tenant), now - this.retentionSeconds * 1000, '+inf');
    return members.sort();
  }

  /**
   * The session no longer has a kernel on `workerId`: home cleared (its next execution goes to
   * whichever worker takes it) and the kernel state recorded — `none` when that was asked for,
   * else a state whose next execution reports `stateLost`. No-op if it already moved on.
   */
  async release(ref: SessionRef, workerId: string, state: KernelState): Promise<boolean> {
    const released = (await this.run('rehome', [this.keys.sessionInfo(ref)], [workerId, state])) === 1;
    await this.redis.srem(this.keys.workerSessions(workerId), sessionMember(ref));
    return released;
  }

  /**
   * Takes the session away from `workerId` to free its kernel for another session
   * (evict-2.lua): only while it is homed there on `generation` with nothing pending.
   * `busy`: it has pending work, keep it; `moved`: it is no longer homed there on that kernel.
   */
  async evict(ref: SessionRef, workerId: string, generation: number): Promise<Eviction> {
    const outcome = (await this.run('evict', [this.keys.sessionInfo(ref), this.keys.lane(ref)], [workerId, generation])) as number;
    if (outcome !== 1) return outcome === 0 ? 'busy' : 'moved';
    await this.redis.srem(this.keys.workerSessions(workerId), sessionMember(ref));
    return 'evicted';
  }

  /** The session's owners (seed §2.4), sorted. */
  async owners(ref: SessionRef): Promise<string[]> {
    return (await this.redis.smembers(this.keys.owners(ref))).sort();
  }

  /**
   * The session ids the owner index lists for an owner of a tenant, sorted. A superset: each
   * must be confirmed against the session's owners (`releaseOwner` does).
   */
  async indexedSessionsOf(tenant: string, ownerId: string): Promise<string[]> {
    return (await this.redis.smembers(this.keys.ownerSessions(tenant, ownerId))).sort();
  }

  /**
   * Takes the owner off the session in one script: `last` means it was the only owner (the
   * caller disposes the session), `detached` that others keep it, `not_owner` that it held
   * none (a stale index entry). The owner's index entry for the session goes either way.
   */
  async releaseOwner(ref: SessionRef, ownerId: string): Promise<OwnerRelease> {
    const released = (await this.run('release-owner', [this.keys.owners(ref)], [ownerId])) as OwnerRelease;
    await this.unindexOwner(ref, ownerId);
    return released;
  }

  /** Removes every owner of the session (it is being disposed) and their index entries. */
  async clearOwners(ref: SessionRef): Promise<string[]> {
    const key = this.keys.owners(ref);
    const [[, owners]] = (await this.redis.multi().smembers(key).del(key).exec()) as [[null, string[]], ...unknown[]];
    await Promise.all(owners.map((ownerId) => this.unindexOwner(ref, ownerId)));
    return owners.sort();
  }

  /**
   * Drops the owner → session index entry, then puts it back if the owner holds the session
   * after all. Accept adds the owner (script) before the index entry, so an accept racing this
   * either re-adds the entry after our SREM, or had added the owner before our check: the index
   * never misses a live owner. At worst it keeps a stale entry, which the next release drops.
   */
  private async unindexOwner(ref: SessionRef, ownerId: string): Promise<void> {
    const index = this.keys.ownerSessions(ref.tenant, ownerId);
    await this.redis.srem(index, ref.sessionId);
    if ((await this.redis.sismember(this.keys.owners(ref), ownerId)) === 1) {
      await this.redis.multi().sadd(index, ref.sessionId).expire(index, this.retentionSeconds).exec();
    }
  }

  /** Sessions homed on a worker. */
  async homedOn(workerId: string): Promise<SessionRef[]> {
    const members = await this.redis.smembers(this.keys.workerSessions(workerId));
    return members.map(parseSessionMember).filter((r): r is SessionRef => r !== null);
  }
}
