import { randomBytes } from 'node:crypto';
import type { RedisClient } from './redis-connection';
import { isTerminal, type Execution, type ExecutionEvent, type ExecutionEventType, type ExecutionStatus, type ResultEvent } from '@kernelfleet/contracts';
import { decodeRef, encodeRef, type ExecutionRef, type KeySpace, type SessionRef } from './keys';
import { acceptOutcomeOf, type AcceptCall, type AcceptOutcome, type AcceptRequest } from './accept-request';
import { requestFields, toExecution, toRecord, type ExecutionRecord } from './execution-record';
import { registerScripts, type ScriptRunner } from './scripts';
import type { FairShare } from './fair-share';
import type { TenantQuotas } from './tenant-quotas';
import type { FleetStats } from './fleet-stats';

/** Which worker holds a session's kernel, and which generation of it, as Redis said at a moment. */
export interface SessionHolder {
  home: string | null;
  generation: number;
}

export type ClaimOutcome =
  /**
   * `holder`: the session's home and kernel generation as the claim saw them. `codeSent`: the
   * claim also marked the code as going to the warm kernel it was told of (see `claim`), so no
   * `markCodeSent` is needed for that kernel.
   */
  | { kind: 'claimed'; record: ExecutionRecord; holder: SessionHolder; codeSent: boolean }
  | { kind: 'expired' | 'missing' | 'not_head' }
  | { kind: 'not_queued'; status: string; runner?: string; runnerBoot?: string };

export type FinishOutcome =
  /** `nextPriority`: the fair-share priority for the next head's job, when already counted. */
  | { kind: 'finished'; nextHead?: ExecutionRef; nextPriority?: number }
  | { kind: 'missing' }
  | { kind: 'already' | 'conflict'; status: string };

export interface RetentionPolicy {
  retentionSeconds: number;
  maxReplayEvents: number;
}

/**
 * Executions in Redis: accept, claim, events, finish, cancel. Every state change that must not
 * half-happen is one Lua script; the guarantees (order, one terminal state, event order) live
 * in those scripts.
 */
/** Whether the code of a running execution may go to its kernel (see markCodeSent). */
export type CodeSending = 'sent' | 'taken' | 'disposed';

export class ExecutionRepository {
  private readonly run: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    readonly keys: KeySpace,
    private readonly policy: RetentionPolicy,
    private readonly quotas: TenantQuotas,
    private readonly fairShare: FairShare,
    /** Told of every execution that reaches its terminal state here (the dashboard's numbers). */
    private readonly stats?: FleetStats,
  ) {
    this.run = registerScripts(redis);
  }

  /**
   * Records the execution, appends it to its session lane and registers its owner (seed §2.4:
   * `ownerId`, or the session id itself while the session has no owner; per-call executions
   * register none); `isHead` → dispatch it (to `home`, the worker holding the session's kernel,
   * if any). On one Redis the commands are sent back to back on one connection: Redis runs them
   * in order, in one round trip. On a Redis Cluster the index, deadline and owner-index keys live
   * in other slots (other nodes, no order between connections), so the deadline entry and the
   * owner index wait for the script's reply: a second round trip keeps the same order.
   * (Submissions does all of this and the admit in one script on one Redis: submit-17.lua.)
   */
  async accept(req: AcceptRequest): Promise<AcceptOutcome> {
    const { ref, keys, args, indexedOwner } = this.acceptCall(req);
    const ttl = this.policy.retentionSeconds;
    // The index first: an index entry without its execution reads as 404, harmless.
    const indexed = this.redis.set(this.keys.executionIndex(ref.executionId), `${ref.tenant}/${ref.sessionId}`, 'EX', ttl);
    const accepted = this.run('accept', keys, args);
    const afterScript = <T>(send: () => Promise<T>): Promise<T> => (this.redis.isCluster ? accepted.then(send) : send());
    // NX: a duplicate accept must not move the deadline of the execution that already exists.
    // After the script: the sweeper drops an overdue entry whose execution does not exist.
    const scheduled = afterScript(() => this.redis.zadd(this.keys.deadlines(), 'NX', req.deadlineAt, encodeRef(ref)));
    // The owner index after the script (see SessionRepository.unindexOwner for why this order).
    // The fallback owner is indexed even when the script did not add it: a stale index entry is
    // harmless, the session's owners set decides.
    const ownerIndexed = indexedOwner ? afterScript(() => this.indexOwner(ref, indexedOwner, ttl)) : Promise.resolve();
    const [, reply] = await Promise.all([indexed, accepted, scheduled, ownerIndexed]);
    return acceptOutcomeOf(ref, reply);
  }

  /**
   * The keys and arguments of accept.lib.lua for `req` (accept-6.lua, or submit-17.lua's second
   * part, which fills in a deadline left out), and the owner whose sessions index gets the session
   * ('' = none).
   */
  acceptCall(req: Omit<AcceptRequest, 'deadlineAt'> & { deadlineAt?: number }): AcceptCall {
    const ref = { tenant: req.tenant, sessionId: req.sessionId, executionId: req.executionId ?? newExecutionId() };
    const owner = req.kernelMode === 'session' ? (req.ownerId ?? '') : '';
    const fallbackOwner = req.kernelMode === 'session' && !req.ownerId ? req.sessionId : '';
    return {
      ref,
      keys: [this.keys.seq(ref), this.keys.lane(ref), this.keys.execution(ref), this.keys.events(ref), this.keys.sessionInfo(ref),
        this.keys.owners(ref)],
      args: [ref.executionId, req.acceptedAt, this.policy.retentionSeconds, this.policy.maxReplayEvents, this.keys.liveChannel(ref), owner,
        fallbackOwner, req.deadlineAt ?? '', ...requestFields(req)],
      indexedOwner: owner || fallbackOwner,
    };
  }

  private async indexOwner(ref: SessionRef, ownerId: string, ttl: number): Promise<void> {
    const key = this.keys.ownerSessions(ref.tenant, ownerId);
    await Promise.all([this.redis.sadd(key, ref.sessionId), this.redis.expire(key, ttl)]);
  }

  /** Finds an execution of this tenant; another tenant's id is indistinguishable from none. */
  async locate(tenant: string, executionId: string): Promise<ExecutionRef | null> {
    const owner = await this.redis.get(this.keys.executionIndex(executionId));
    if (!owner) return null;
    const slash = owner.indexOf('/');
    if (owner.slice(0, slash) !== tenant) return null;
    return { tenant, sessionId: owner.slice(slash + 1), executionId };
  }

  async get(ref: ExecutionRef): Promise<Execution | null> {
    const h = await this.redis.hgetall(this.keys.execution(ref));
    return h.status ? toExecution(ref, h) : null;
  }

  /** Just the status (cheap: no code or result document), or null when the execution is gone. */
  async status(ref: ExecutionRef): Promise<ExecutionStatus | null> {
    return ((await this.redis.hget(this.keys.execution(ref), 'status')) as ExecutionStatus | null) || null;
  }

  /** Just the seq, or null when the execution does not exist (cheap: reads one field). */
  async seqOf(ref: ExecutionRef): Promise<number | null> {
    const seq = await this.redis.hget(this.keys.execution(ref), 'seq');
    return seq ? Number(seq) : null;
  }

  async getRecord(ref: ExecutionRef): Promise<ExecutionRecord | null> {
    const h = await this.redis.hgetall(this.keys.execution(ref));
    return h.status ? toRecord(ref, h) : null;
  }

  /**
   * A worker takes the execution it was handed (queued, lane head, deadline not passed).
   * `warmGeneration`: the generation of the session's kernel the worker holds alive, if any; when
   * the execution will run on it as it is, the claim marks the code as sent too (claim-4.lua),
   * which saves the warm path a round trip before its code goes out.
   */
  async claim(ref: ExecutionRef, workerId: string, bootId: string, now: number, warmGeneration?: number): Promise<ClaimOutcome> {
    const { keys, args } = this.claimCall(ref, workerId, bootId, now, warmGeneration);
    return claimOutcomeOf(ref, (await this.run('claim', keys, args)) as string[]);
  }

  /** The keys and arguments of claim.lib.lua (claim-4.lua, or claim-running-6.lua's first part). */
  private claimCall(ref: ExecutionRef, workerId: string, bootId: string, now: number, warmGeneration?: number) {
    return {
      keys: [this.keys.execution(ref), this.keys.lane(ref), this.keys.events(ref), this.keys.sessionInfo(ref)],
      args: [ref.executionId, workerId, now, this.keys.liveChannel(ref), this.policy.maxReplayEvents, bootId, warmGeneration ?? ''],
    };
  }

  /** Emits an event of a running execution; 0 when it is no longer running. */
  emit(ref: ExecutionRef, type: Exclude<ExecutionEventType, 'result' | 'queued' | 'started'>, data: unknown): Promise<number> {
    return this.run(
      'emit',
      [this.keys.execution(ref), this.keys.events(ref)],
      [type, JSON.stringify(data), this.keys.liveChannel(ref), this.policy.maxReplayEvents],
    ) as Promise<number>;
  }

  /**
   * Moves the execution to its terminal state (once: a second finish answers `already`) and
   * releases the lane, its deadline entry and its place in the tenant's quotas. `onlyIf` guards
   * against racing a worker (cancel only what is queued). `runner`: the worker ending its own
   * run, whose running set lets go of the execution too, whatever the finish answers. On one
   * Redis all of it is one script (finish-release-10.lua); on a Redis Cluster the finish, then
   * the rest as commands of their own.
   */
  async finish(ref: ExecutionRef, execution: Execution, onlyIf: 'queued' | 'running' | '' = '', runner?: string): Promise<FinishOutcome> {
    const now = execution.timings.finishedAt ?? Date.now();
    const keys = [this.keys.execution(ref), this.keys.lane(ref), this.keys.events(ref), this.keys.sessionInfo(ref), this.keys.artifact(ref)];
    const args = [ref.executionId, onlyIf, execution.status, JSON.stringify(execution), now,
      this.policy.retentionSeconds, this.keys.liveChannel(ref), this.policy.maxReplayEvents, execution.result?.artifactId ? '1' : '0'];
    let kind: string;
    let detail: string;
    let priority: number | undefined;
    if (this.redis.isCluster) {
      [kind, detail] = (await this.run('finish', keys, args)) as string[];
      const unmarked = runner ? this.unmarkRunning(ref, runner) : undefined;
      if (kind === 'finished') {
        [, { priority }] = await Promise.all([this.forgetDeadline(ref), this.quotas.release(ref, detail || undefined)]);
      }
      await unmarked;
    } else {
      const release = this.quotas.releaseCall(ref);
      let counted: number | undefined;
      [kind, detail, counted] = (await this.run(
        'finish-release',
        [...keys, this.keys.deadlines(), ...release.keys, this.keys.workerRunning(runner ?? '')],
        [...args, encodeRef(ref), ...release.args, release.countsNextHead ? '1' : '', runner ? '1' : ''],
      )) as [string, string, number | undefined];
      priority = counted || undefined;
    }
    if (kind === 'finished') {
      this.stats?.record(execution, now);
      return { kind, nextHead: detail ? { ...ref, executionId: detail } : undefined, nextPriority: priority };
    }
    if (kind === 'missing') return { kind };
    return { kind: kind as 'already' | 'conflict', status: detail };
  }

  /** Signals the worker running the execution; answers the status when it is not running. */
  requestCancel(ref: ExecutionRef): Promise<string> {
    return this.run('request-cancel', [this.keys.execution(ref)], [ref.executionId, this.keys.workerControlPrefix()]) as Promise<string>;
  }

  /**
   * A worker takes a lane head it was handed: it no longer waits (fair share), and `claim`, with
   * the execution in the worker's running set exactly when it runs there (claimed now, or by
   * this worker process before): a worker that dies right after claiming is found there by its
   * reaper. On one Redis that is one script (claim-running-6.lua). On a Redis Cluster the set
   * and the waiting heads are in other slots: `markRunning` first, then the claim, and the entry
   * goes again when the claim is not this worker's.
   */
  async markRunningAndClaim(ref: ExecutionRef, workerId: string, bootId: string, now: () => number, warmGeneration?: number): Promise<ClaimOutcome> {
    if (this.redis.isCluster) {
      // Not awaited: it only steers the priority of the tenant's next dispatches.
      void this.fairShare.taken(ref.tenant, ref.executionId).catch(() => undefined);
      await this.markRunning(ref, workerId);
      const claim = await this.claim(ref, workerId, bootId, now(), warmGeneration);
      if (claim.kind !== 'claimed' && !isRunningHere(claim, workerId, bootId)) await this.unmarkRunning(ref, workerId);
      return claim;
    }
    const { keys, args } = this.claimCall(ref, workerId, bootId, now(), warmGeneration);
    const waiting = this.fairShare.enabled ? ref.executionId : '';
    const reply = await this.run('claim-running', [...keys, this.keys.workerRunning(workerId), this.keys.tenantWaiting(ref.tenant)], [...args, encodeRef(ref), waiting]);
    return claimOutcomeOf(ref, reply as string[]);
  }

  /** Records that `workerId` runs the execution (failover finds it there if the worker dies). */
  async markRunning(ref: ExecutionRef, workerId: string): Promise<void> {
    await this.redis.sadd(this.keys.workerRunning(workerId), encodeRef(ref));
  }

  async unmarkRunning(ref: ExecutionRef, workerId: string): Promise<void> {
    await this.redis.srem(this.keys.workerRunning(workerId), encodeRef(ref));
  }

  async runningOn(workerId: string): Promise<ExecutionRef[]> {
    const members = await this.redis.smembers(this.keys.workerRunning(workerId));
    return members.map(decodeRef).filter((r): r is ExecutionRef => r !== null);
  }

  /**
   * Back to queued after its kernel was lost: always when its code was never sent
   * (`unstarted`), once with retryOnKernelLoss (`retry`). Answers the new attempt number, or 0.
   */
  async requeue(ref: ExecutionRef, workerId: string, mode: 'unstarted' | 'retry'): Promise<number> {
    return (await this.run('requeue', [this.keys.execution(ref)], [workerId, mode])) as number;
  }

  /**
   * Marks that the code is about to reach a kernel (code-sent-2.lua): from here a lost execution
   * may have had side effects and is not re-run silently. Awaited before the code goes out, so a
   * reaper either sees the mark or this worker sees the execution gone, never neither. Answers
   * `sent`; `taken` when the execution no longer runs under this worker process (a reaper took
   * it while the worker's lease had lapsed); `disposed` when its session was disposed since the
   * claim (a session kernel only: the disposal came while the kernel started). In both the code
   * must not be sent.
   */
  async markCodeSent(ref: ExecutionRef, workerId: string, bootId: string, sessionGeneration: number | null): Promise<CodeSending> {
    const keys = [this.keys.execution(ref), this.keys.sessionInfo(ref)];
    const reply = (await this.run('code-sent', keys, [workerId, bootId, sessionGeneration ?? ''])) as number;
    return reply === 1 ? 'sent' : reply === -1 ? 'disposed' : 'taken';
  }

  /** The execution used its one re-run (on the same worker, after its kernel died). */
  async markRetried(ref: ExecutionRef): Promise<void> {
    await this.redis.hset(this.keys.execution(ref), 'retried', '1');
  }

  /** Replay: the events after `afterSeq`, in order. */
  /** The `result` event of an execution that has ended (its last event), else null. */
  async resultEvent(ref: ExecutionRef): Promise<ResultEvent | null> {
    const [status, last] = await this.redis.hmget(this.keys.execution(ref), 'status', 'evseq');
    if (!status || !isTerminal(status as ExecutionStatus)) return null;
    const [event] = await this.readEvents(ref, Number(last) - 1, 1);
    return event?.type === 'result' ? event : null;
  }

  async readEvents(ref: ExecutionRef, afterSeq: number, count = 1_000): Promise<ExecutionEvent[]> {
    const entries = await this.redis.xrange(this.keys.events(ref), `${afterSeq + 1}-0`, '+', 'COUNT', count);
    return entries.map(([, fields]) => JSON.parse(fields[1]) as ExecutionEvent);
  }

  async laneOf(ref: SessionRef): Promise<ExecutionRef[]> {
    const ids = await this.redis.lrange(this.keys.lane(ref), 0, -1);
    return ids.map((executionId) => ({ ...ref, executionId }));
  }

  /**
   * Appends to the execution's artifact. The write that creates it sets the retention, so an
   * artifact whose execution ends without naming it (the worker died) still expires; the finish
   * of a result that names it sets the retention again from the end. Later writes (one per
   * output piece of a large output) cost the APPEND alone.
   */
  async appendArtifact(ref: ExecutionRef, text: string): Promise<void> {
    const key = this.keys.artifact(ref);
    const length = await this.redis.append(key, text);
    if (length === Buffer.byteLength(text)) await this.redis.expire(key, this.policy.retentionSeconds);
  }

  async readArtifact(ref: ExecutionRef): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.artifact(ref));
  }

  /** Queued executions whose deadline has passed (the sweeper ends them `timed_out`). */
  async overdue(now: number, limit = 100): Promise<ExecutionRef[]> {
    const members = await this.redis.zrangebyscore(this.keys.deadlines(), '-inf', now, 'LIMIT', 0, limit);
    return members.map(decodeRef).filter((r): r is ExecutionRef => r !== null);
  }

  async forgetDeadline(ref: ExecutionRef): Promise<void> {
    await this.redis.zrem(this.keys.deadlines(), encodeRef(ref));
  }
}

export function newExecutionId(): string {
  return `ex_${randomBytes(12).toString('hex')}`;
}

/**
 * A claim refused because the execution already runs on this worker process (`workerId` and
 * its `bootId`): it was handed again while running here.
 */
export function isRunningHere(claim: ClaimOutcome, workerId: string, bootId: string): boolean {
  return claim.kind === 'not_queued' && claim.status === 'running' && claim.runner === workerId && claim.runnerBoot === bootId;
}

/** What claim.lib.lua answered, read. */
function claimOutcomeOf(ref: ExecutionRef, reply: string[]): ClaimOutcome {
  const [kind, ...rest] = reply;
  if (kind === 'claimed') {
    const [home, generation, sent, ...fields] = rest;
    const h: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) h[fields[i]] = fields[i + 1];
    return { kind, record: toRecord(ref, h), holder: { home: home || null, generation: Number(generation) }, codeSent: sent === '1' };
  }
  if (kind === 'expired' || kind === 'missing' || kind === 'not_head') return { kind };
  return { kind: 'not_queued', status: kind, runner: rest[0] || undefined, runnerBoot: rest[1] || undefined };
}
