import type { QuotaLimits } from '@kernelfleet/config';
import type { Dispatcher } from './dispatcher';
import type { AcceptOutcome, AcceptRequest, ExecutionRepository } from './execution-repository';
import type { FairShare } from './fair-share';
import type { Admission, TenantQuotas } from './tenant-quotas';

/** A submission: an execution (or a file operation) to accept into its session's lane. */
export interface SubmitRequest extends Omit<AcceptRequest, 'deadlineAt' | 'executionId'> {
  executionId: string;
  /** The client's own deadline; else `acceptedAt` plus the admitted timeout. */
  deadlineAt?: number;
  /** The timeout the request asks for (from timeoutMs or deadlineAt); undefined for the default. */
  requestedTimeoutMs?: number;
  defaultTimeoutMs: number;
}

export type SubmitOutcome =
  | { kind: 'accepted'; accepted: AcceptOutcome; deadlineAt: number }
  /** A tenant quota refused it: nothing was changed. */
  | { kind: 'refused'; admission: Extract<Admission, { kind: 'refused' }> };

/**
 * The accept path as one call: the tenant's quotas admit the submission, it is numbered in its
 * session's lane, and a new lane head is dispatched (to the worker holding the session's kernel,
 * else the shared queue). Both executions and file operations come in here.
 */
export class Submissions {
  constructor(
    private readonly quotas: TenantQuotas,
    private readonly executions: ExecutionRepository,
    private readonly dispatcher: Dispatcher,
    private readonly fairShare: FairShare,
  ) {}

  async submit(req: SubmitRequest, limits: QuotaLimits): Promise<SubmitOutcome> {
    const ref = { tenant: req.tenant, sessionId: req.sessionId, executionId: req.executionId };
    const admission = await this.quotas.admit(
      { ref, codeBytes: Buffer.byteLength(req.code), timeoutMs: req.requestedTimeoutMs, defaultTimeoutMs: req.defaultTimeoutMs },
      limits,
    );
    if (admission.kind === 'refused') return { kind: 'refused', admission };
    const deadlineAt = req.deadlineAt ?? req.acceptedAt + admission.timeoutMs;
    const accepted = await this.executions.accept({ ...req, deadlineAt });
    if (accepted.isHead) await this.dispatcher.dispatch(accepted.ref, accepted.home, 0, admission.priority);
    // Admit guessed the head from its own count, which a crash can skew: no job, no waiting entry.
    else if (admission.priority !== undefined) await this.fairShare.taken(req.tenant, ref.executionId);
    return { kind: 'accepted', accepted, deadlineAt };
  }
}
