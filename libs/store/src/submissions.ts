import type { QuotaLimits } from '@kernelfleet/config';
import type { Dispatcher } from './dispatcher';
import { acceptOutcomeOf, type AcceptOutcome, type AcceptRequest } from './accept-request';
import type { ExecutionRepository } from './execution-repository';
import type { IdempotencyKeys, IdempotencyRecord } from './idempotency-keys';
import type { FairShare } from './fair-share';
import { encodeRef, type ExecutionRef, type KeySpace } from './keys';
import type { RedisClient } from './redis-connection';
import { registerScripts, type ScriptRunner } from './scripts';
import { admissionOf, type Admission, type TenantQuotas } from './tenant-quotas';
import type { WorkerRegistry } from './worker-registry';

/** A submission: an execution (or a file operation) to accept into its session's lane. */
export interface SubmitRequest extends Omit<AcceptRequest, 'deadlineAt' | 'executionId'> {
  executionId: string;
  /** The client's own deadline; else `acceptedAt` plus the admitted timeout. */
  deadlineAt?: number;
  /** The timeout the request asks for (from timeoutMs or deadlineAt); undefined for the default. */
  requestedTimeoutMs?: number;
  defaultTimeoutMs: number;
  /**
   * The request's Idempotency-Key, to claim for it: `record` (its seq left out) is what the key
   * stands for once the execution is accepted. A refusal leaves the key unclaimed.
   */
  idempotency?: { key: string; record: IdempotencyRecord; ttlSeconds: number };
}

export type SubmitOutcome =
  /** The Idempotency-Key stands for a request already (`record`): nothing was changed. */
  | { kind: 'keyTaken'; record: IdempotencyRecord }
  | { kind: 'accepted'; accepted: AcceptOutcome; deadlineAt: number }
  /** A tenant quota refused it: nothing was changed. */
  | { kind: 'refused'; admission: Extract<Admission, { kind: 'refused' }> };

/** How many sessions' homes one process remembers for submit-17.lua's guess (the oldest goes first). */
const REMEMBERED_HOMES = 10_000;

/**
 * The accept path as one call: the request's Idempotency-Key is claimed, the tenant's quotas
 * admit the submission, it is numbered in its session's lane, and a new lane head is dispatched
 * (to the worker holding the session's kernel, else the shared queue). Both executions and file
 * operations come in here.
 *
 * On one Redis all of it is one script, one round trip (submit-17.lua). Its dispatch needs the
 * home worker's inbox key before the script reads the session's home, so this process remembers
 * each session's home from its last accept and names that worker when the registry's view has it
 * alive and not draining; the script places the head there only when the home is still that
 * worker. Any other head (a first accept here, a session moved) is dispatched after the reply, as
 * on a Redis Cluster, where the tenant's, the session's and the worker's keys are in different
 * slots and the steps are three scripts and commands in turn.
 */
export class Submissions {
  private readonly run: ScriptRunner;
  /** `<tenant>/<session>` → the session's home, as this process's last accept saw it. */
  private readonly homes = new Map<string, string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly quotas: TenantQuotas,
    private readonly executions: ExecutionRepository,
    private readonly dispatcher: Dispatcher,
    private readonly registry: WorkerRegistry,
    private readonly fairShare: FairShare,
    private readonly idempotency: IdempotencyKeys,
  ) {
    this.run = registerScripts(redis);
  }

  submit(req: SubmitRequest & { idempotency?: undefined }, limits: QuotaLimits): Promise<Exclude<SubmitOutcome, { kind: 'keyTaken' }>>;
  submit(req: SubmitRequest, limits: QuotaLimits): Promise<SubmitOutcome>;
  submit(req: SubmitRequest, limits: QuotaLimits): Promise<SubmitOutcome> {
    return this.redis.isCluster ? this.submitInSteps(req, limits) : this.submitInOneStep(req, limits);
  }

  private async submitInOneStep(req: SubmitRequest, limits: QuotaLimits): Promise<SubmitOutcome> {
    const session = `${req.tenant}/${req.sessionId}`;
    const remembered = this.homes.get(session);
    const guess = remembered && (await this.registry.acceptsWork(remembered)) ? remembered : '';
    const accept = this.executions.acceptCall(req);
    const { ref } = accept;
    const admit = this.quotas.admitCall(this.admitRequest(ref, req), limits);
    const index = this.keys.executionIndex(ref.executionId);
    const { idempotency } = req;
    // KEYS[15..17] are not touched when their ARGV says none: the index key stands in.
    const reply = (await this.run(
      'submit',
      [...admit.keys, ...accept.keys, index, this.keys.deadlines(),
        accept.indexedOwner ? this.keys.ownerSessions(ref.tenant, accept.indexedOwner) : index, guess ? this.keys.workerInbox(guess) : index,
        idempotency ? this.idempotency.redisKey(ref.tenant, idempotency.key) : index],
      [...admit.args, session, encodeRef(ref), accept.indexedOwner, guess,
        idempotency ? JSON.stringify(idempotency.record) : '', idempotency?.ttlSeconds ?? '', ...accept.args],
    )) as unknown[];
    if (reply[0] === 'key') return { kind: 'keyTaken', record: JSON.parse(reply[1] as string) as IdempotencyRecord };
    if (reply[0] !== 'ok') return { kind: 'refused', admission: admissionOf(reply) as Extract<Admission, { kind: 'refused' }> };
    const [, , priority, deadlineAt] = reply as number[];
    const accepted = acceptOutcomeOf(ref, reply.slice(4, 8));
    const dispatched = reply[8];
    this.remember(session, accepted.home);
    if (accepted.isHead && dispatched !== 1) await this.dispatcher.dispatch(ref, accepted.home, 0, priority > 0 ? priority : undefined);
    return { kind: 'accepted', accepted, deadlineAt };
  }

  private async submitInSteps(req: SubmitRequest, limits: QuotaLimits): Promise<SubmitOutcome> {
    const ref = { tenant: req.tenant, sessionId: req.sessionId, executionId: req.executionId };
    const { idempotency } = req;
    if (idempotency) {
      const taken = await this.idempotency.claim(ref.tenant, idempotency.key, idempotency.record, idempotency.ttlSeconds);
      if (taken) return { kind: 'keyTaken', record: taken };
    }
    const admission = await this.quotas.admit(this.admitRequest(ref, req), limits);
    if (admission.kind === 'refused') {
      if (idempotency) await this.idempotency.dropClaim(ref.tenant, idempotency.key, idempotency.record);
      return { kind: 'refused', admission };
    }
    const deadlineAt = req.deadlineAt ?? req.acceptedAt + admission.timeoutMs;
    const accepted = await this.executions.accept({ ...req, deadlineAt });
    if (idempotency) await this.idempotency.complete(ref.tenant, idempotency.key, { ...idempotency.record, seq: accepted.seq });
    if (accepted.isHead) await this.dispatcher.dispatch(accepted.ref, accepted.home, 0, admission.priority);
    // Admit guessed the head from its own count, which a crash can skew: no job, no waiting entry.
    else if (admission.priority !== undefined) await this.fairShare.taken(req.tenant, ref.executionId);
    return { kind: 'accepted', accepted, deadlineAt };
  }

  private admitRequest(ref: ExecutionRef, req: SubmitRequest) {
    return { ref, codeBytes: Buffer.byteLength(req.code), timeoutMs: req.requestedTimeoutMs, defaultTimeoutMs: req.defaultTimeoutMs };
  }

  private remember(session: string, home: string | null): void {
    this.homes.delete(session);
    if (!home) return;
    if (this.homes.size >= REMEMBERED_HOMES) this.homes.delete(this.homes.keys().next().value!);
    this.homes.set(session, home);
  }
}
