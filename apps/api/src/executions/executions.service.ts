import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  ID_PATTERN,
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENCY_KEY_PATTERN,
  isTerminal,
  submitExecutionSchema,
  type Execution,
  type SubmitAccepted,
  type SubmitExecution,
} from '@kernelfleet/contracts';
import type { ApiConfig } from '@kernelfleet/config';
import { FleetStore, newExecutionId, type ExecutionRef, type ApiProcessChannel, type FollowedExecution, type IdempotencyRecord, type ResultWaiter } from '@kernelfleet/store';
import { executionFinishedLine } from '@kernelfleet/telemetry';
import { invalid, invalidBody, notFound, ProblemException } from '../problems/problem.exception';
import { admissionRefused } from '../problems/admission-refused';
import { API_CONFIG } from '../tokens';
import { EventFollower } from './event-follower';

/** How long `wait=true` may outlast the deadline: the interrupt grace plus a margin. */
const WAIT_SLACK_MS = 15_000;

/** How long a request waits for another one holding the same Idempotency-Key to accept. */
const CLAIM_WAIT_MS = 5_000;
/** A claim still pending after this long was left by a stalled or crashed api: take it over. */
const STALE_CLAIM_MS = 10_000;
const CLAIM_POLL_MS = 25;

export function checkId(field: string, value: string): void {
  if (!ID_PATTERN.test(value)) throw invalid([{ field, message: 'must be 1-128 characters of A-Z a-z 0-9 . _ : -' }]);
}

/** What a submit answers: the accepted (or, for a repeated Idempotency-Key, the earlier) execution. */
export interface Submitted {
  accepted: SubmitAccepted;
  ref: ExecutionRef;
  deadlineAt: number;
  /** An Idempotency-Key repeated: this is the execution its first request created. */
  replayed: boolean;
  /** Where the terminal execution arrives, when the submit asked for its end and was accepted so. */
  waiter?: ResultWaiter;
  /** Where every event arrives, when the submit asked for them and was accepted so. */
  followed?: FollowedExecution;
}

/**
 * What a submit's request takes of the execution once accepted: nothing more (`202`), its end
 * (`wait=true`, a stream of the result alone) or every event (a streamed submit). The last two
 * come through this process's channel (ApiProcessChannel) when it is subscribed.
 */
export type Following = 'nothing' | 'result' | 'events';

/** A submit's Idempotency-Key: to claim with the accept, or (`claimed`) a stale claim taken over. */
interface KeyUse {
  key: string;
  claim: IdempotencyRecord;
  claimed: boolean;
}

/** What ExecutionsService.accept takes: the validated request, the id and time it is accepted under, what it follows, its key. */
interface Acceptance {
  tenant: string;
  sessionId: string;
  req: SubmitExecution;
  executionId: string;
  now: number;
  following: Following;
  keyed?: KeyUse;
}

/**
 * The request an Idempotency-Key stands for: the session and the validated body with its keys
 * sorted, so the same JSON sent with its fields in another order is the same request.
 */
function fingerprintOf(sessionId: string, req: SubmitExecution): string {
  const body = Object.entries(req)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify([sessionId, body])).digest('hex');
}

@Injectable()
export class ExecutionsService {
  private readonly logger = new Logger(ExecutionsService.name);
  /** This process's channel, subscribed from the start (see `accept`). */
  private readonly channel: ApiProcessChannel;

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly store: FleetStore,
    private readonly follower: EventFollower,
  ) {
    this.channel = store.apiProcessChannel;
    // The api writes terminal states of queued executions it cancels (cancel, cancel-pending, DELETE).
    store.lanes.onFinished((ref, execution) => this.logger.log(executionFinishedLine(ref.tenant, execution)));
  }

  /**
   * Validates, accepts (numbering it in its session) and dispatches when it heads the lane. With
   * an Idempotency-Key: the same key and request answer the execution the first one created
   * (`replayed`); the key with another request is a 422.
   */
  async submit(tenant: string, sessionId: string, body: unknown, idempotencyKey?: string, following: Following = 'nothing'): Promise<Submitted> {
    checkId('sessionId', sessionId);
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
      throw invalid([{ field: IDEMPOTENCY_KEY_HEADER, message: 'must be 1-255 printable ASCII characters' }]);
    }
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid([{ field: 'body', message: 'must be a JSON object' }]);
    }
    const parsed = submitExecutionSchema.safeParse(body);
    if (!parsed.success) {
      throw invalidBody(parsed.error.issues);
    }
    const req = parsed.data;
    const { maxCodeBytes, maxTimeoutMs } = this.config.limits;
    const codeBytes = Buffer.byteLength(req.code);
    if (codeBytes > maxCodeBytes) {
      throw new ProblemException('payloadTooLarge', 413, `code is ${codeBytes} bytes; the limit is ${maxCodeBytes}`);
    }
    if (req.code.includes('\u0000')) throw invalid([{ field: 'code', message: 'must not contain NUL characters' }]);
    if (req.timeoutMs !== undefined && req.timeoutMs > maxTimeoutMs) {
      throw invalid([{ field: 'timeoutMs', message: `must be at most ${maxTimeoutMs}` }]);
    }
    if (idempotencyKey === undefined) return this.accept({ tenant, sessionId, req, executionId: newExecutionId(), now: Date.now(), following });
    return this.submitOnce(tenant, sessionId, req, idempotencyKey, fingerprintOf(sessionId, req), following);
  }

  /**
   * Submits under an Idempotency-Key: claims the key for a new execution id and accepts, in one
   * store call, or answers what the key already stands for. A request that finds the key claimed
   * but not yet accepted (on a Redis Cluster, where the claim is a step of its own) waits up to
   * CLAIM_WAIT_MS, then answers 409 (retry); a claim pending for over STALE_CLAIM_MS is taken
   * over by accepting its execution id, which the accept script creates at most once, so a slow
   * first holder and the taker cannot both create it.
   */
  private async submitOnce(tenant: string, sessionId: string, req: SubmitExecution, key: string, fingerprint: string, following: Following): Promise<Submitted> {
    const waitUntil = Date.now() + CLAIM_WAIT_MS;
    for (;;) {
      // Deadline checks first: a request refused with 400 leaves the key unclaimed.
      const now = Date.now();
      this.requestedTimeoutOf(req, now);
      const claim: IdempotencyRecord = { fingerprint, sessionId, executionId: newExecutionId(), claimedAt: now };
      const submitted = await this.accept({ tenant, sessionId, req, executionId: claim.executionId, now, following, keyed: { key, claim, claimed: false } });
      if (!('taken' in submitted)) return submitted;
      let record: IdempotencyRecord | null = submitted.taken;
      while (record) {
        if (record.fingerprint !== fingerprint) {
          throw new ProblemException(
            'unprocessable',
            422,
            `${IDEMPOTENCY_KEY_HEADER} was already used with a different request (session or body); use a new key for a new request`,
          );
        }
        const ref: ExecutionRef = { tenant, sessionId: record.sessionId, executionId: record.executionId };
        if (record.seq !== undefined) return this.replay(ref);
        // Pending: accepted already (its holder has not recorded the seq yet), or still coming.
        const seq = await this.store.executions.seqOf(ref);
        if (seq !== null) {
          await this.store.idempotency.complete(tenant, key, { ...record, seq });
          return this.replay(ref);
        }
        if (Date.now() - record.claimedAt > STALE_CLAIM_MS) {
          const keyed = { key, claim: record, claimed: true };
          const takenOver = await this.accept({ tenant, sessionId, req, executionId: record.executionId, now: Date.now(), following, keyed });
          if (!('taken' in takenOver)) return takenOver;
        }
        if (Date.now() >= waitUntil) {
          throw new ProblemException(
            'conflict',
            409,
            `a request with this ${IDEMPOTENCY_KEY_HEADER} is still being accepted; retry shortly`,
            {},
            { 'Retry-After': '1' },
          );
        }
        await new Promise((r) => setTimeout(r, CLAIM_POLL_MS));
        // Gone meanwhile (expired, or its claimer refused): claim it afresh.
        record = await this.store.idempotency.read(tenant, key);
      }
    }
  }

  /**
   * Admits (tenant quotas), accepts under `executionId` at `now` and dispatches a new lane head;
   * with `keyed`, claims the Idempotency-Key in the same store call (or, `claimed`, completes
   * a claim taken over). Answers `taken` with the key's record when the key stands for a request
   * already. The deadline is checked against `now`, the time the request was validated at. A
   * refused admission changes nothing and leaves the key unclaimed, so a retry with the same
   * key is a new request. `following`: what the request takes of the execution, which this
   * process's channel brings once it is subscribed (ApiProcessChannel).
   */
  private accept(acceptance: Acceptance & { keyed?: undefined }): Promise<Submitted>;
  private accept(acceptance: Acceptance): Promise<Submitted | { taken: IdempotencyRecord }>;
  private async accept({ tenant, sessionId, req, executionId, now, following, keyed }: Acceptance): Promise<Submitted | { taken: IdempotencyRecord }> {
    const { channel } = this;
    const waiter = following === 'result' && channel.ready ? channel.expect(executionId) : undefined;
    const followed = following === 'events' && channel.ready ? channel.follow(executionId) : undefined;
    const unregister = () => {
      waiter?.cancel();
      followed?.cancel();
    };
    const toClaim = keyed && !keyed.claimed ? { key: keyed.key, record: keyed.claim, ttlSeconds: this.config.idempotencyTtlSeconds } : undefined;
    const takenOver = keyed?.claimed ? keyed : undefined;
    try {
      const submitted = await this.store.submissions.submit(
        {
          tenant,
          sessionId,
          executionId,
          code: req.code,
          acceptedAt: now,
          deadlineAt: req.deadlineAt,
          requestedTimeoutMs: this.requestedTimeoutOf(req, now),
          defaultTimeoutMs: this.config.limits.defaultTimeoutMs,
          kernelMode: req.kernelMode ?? 'session',
          reset: req.reset ?? false,
          ownerId: req.ownerId,
          retryOnKernelLoss: req.retryOnKernelLoss ?? false,
          tools: req.tools,
          toolCallTimeoutMs: req.toolCallTimeoutMs,
          waiter: waiter && channel.name,
          follower: followed && channel.name,
          idempotency: toClaim,
        },
        this.config.quotas,
      );
      if (submitted.kind === 'keyTaken') {
        unregister();
        return { taken: submitted.record };
      }
      if (submitted.kind === 'refused') {
        if (takenOver) await this.store.idempotency.dropClaim(tenant, takenOver.key, takenOver.claim);
        throw admissionRefused(submitted.admission, sessionId, {
          codeBytes: Buffer.byteLength(req.code),
          timeoutField: req.deadlineAt !== undefined ? 'deadlineAt' : 'timeoutMs',
        });
      }
      const { accepted, deadlineAt } = submitted;
      if (takenOver) await this.store.idempotency.complete(tenant, takenOver.key, { ...takenOver.claim, seq: accepted.seq });
      if (accepted.duplicate) {
        // An Idempotency-Key's execution, accepted before: it has no waiter or follower of ours.
        unregister();
        return await this.replay(accepted.ref);
      }
      return {
        accepted: { executionId: accepted.ref.executionId, sessionId, seq: accepted.seq, status: 'queued' },
        ref: accepted.ref,
        deadlineAt,
        replayed: false,
        waiter,
        followed,
      };
    } catch (error) {
      unregister();
      throw error;
    }
  }

  /** The execution an Idempotency-Key created, as it is now. */
  private async replay(ref: ExecutionRef): Promise<Submitted> {
    const execution = await this.store.executions.get(ref);
    if (!execution) {
      throw new ProblemException(
        'conflict',
        409,
        `execution ${ref.executionId}, created with this ${IDEMPOTENCY_KEY_HEADER}, is past its retention; use a new key for a new request`,
      );
    }
    return {
      accepted: { executionId: ref.executionId, sessionId: ref.sessionId, seq: execution.seq, status: execution.status },
      ref,
      deadlineAt: execution.timings.deadlineAt,
      replayed: true,
    };
  }

  /**
   * The timeout the request asks for (from `timeoutMs` or `deadlineAt`), or undefined for the
   * default; 400 when `deadlineAt` is out of range. The tenant's own maximum is checked at admit.
   */
  private requestedTimeoutOf(req: SubmitExecution, now: number): number | undefined {
    const { maxTimeoutMs } = this.config.limits;
    if (req.deadlineAt !== undefined && req.deadlineAt <= now) {
      throw invalid([{ field: 'deadlineAt', message: 'is in the past' }]);
    }
    if (req.deadlineAt !== undefined && req.deadlineAt > now + maxTimeoutMs) {
      throw invalid([{ field: 'deadlineAt', message: `must be within ${maxTimeoutMs} ms from now` }]);
    }
    return req.deadlineAt !== undefined ? req.deadlineAt - now : req.timeoutMs;
  }

  /**
   * Waits for the terminal state (bounded by the deadline plus slack) and answers the execution:
   * through the submit's `waiter` when it has one, else by following the execution's events.
   */
  async waitForResult({ ref, deadlineAt, waiter }: Submitted, signal: AbortSignal): Promise<Execution> {
    let result: Execution | undefined;
    const timeout = AbortSignal.timeout(Math.max(0, deadlineAt - Date.now()) + WAIT_SLACK_MS);
    const until = AbortSignal.any([signal, timeout]);
    if (waiter) result = (await this.follower.awaitResult(ref, waiter, until))?.data;
    else await this.follower.follow(ref, 0, (e) => e.type === 'result' && (result = e.data), until);
    return result ?? (await this.get(ref));
  }

  async locate(tenant: string, executionId: string): Promise<ExecutionRef> {
    checkId('executionId', executionId);
    const ref = await this.store.executions.locate(tenant, executionId);
    if (!ref) throw notFound(`execution ${executionId}`);
    return ref;
  }

  /** The execution; while it runs, with the tool calls that wait for the client's answer. */
  async get(ref: ExecutionRef): Promise<Execution> {
    const execution = await this.store.executions.get(ref);
    if (!execution) throw notFound(`execution ${ref.executionId}`);
    if (execution.status !== 'running') return execution;
    const pendingToolCalls = await this.store.toolCalls.pending(ref);
    return pendingToolCalls.length ? { ...execution, pendingToolCalls } : execution;
  }

  async artifact(ref: ExecutionRef): Promise<Buffer> {
    const execution = await this.get(ref);
    const artifact = await this.store.executions.readArtifact(ref);
    if (!artifact) {
      throw notFound(
        isTerminal(execution.status)
          ? `artifact of execution ${ref.executionId} (its output did not overflow)`
          : `artifact of execution ${ref.executionId} (not yet written)`,
      );
    }
    return artifact;
  }

  /** Queued: removed, never runs (answers the terminal execution). Running: interrupted. */
  async cancel(ref: ExecutionRef): Promise<Execution> {
    const ended = await this.store.lanes.endQueued(ref, 'cancelled');
    if (ended.kind === 'missing') throw notFound(`execution ${ref.executionId}`);
    if (ended.kind === 'conflict' || ended.kind === 'already') {
      const signalled = await this.store.executions.requestCancel(ref);
      if (signalled !== 'signalled') {
        throw new ProblemException('conflict', 409, `execution ${ref.executionId} already ended (${signalled})`);
      }
    }
    return this.get(ref);
  }
}
