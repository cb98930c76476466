import { Inject, Injectable } from '@nestjs/common';
import {
  ID_PATTERN,
  isTerminal,
  submitExecutionSchema,
  type Execution,
  type SubmitAccepted,
} from '@kernelfleet/contracts';
import type { ApiConfig } from '@kernelfleet/config';
import { FleetStore, type ExecutionRef } from '@kernelfleet/store';
import { invalid, notFound, ProblemException } from '../problems/problem.exception';
import { API_CONFIG } from '../tokens';
import { EventFollower } from './event-follower';

/** How long `wait=true` may outlast the deadline: the interrupt grace plus a margin. */
const WAIT_SLACK_MS = 15_000;

export function checkId(field: string, value: string): void {
  if (!ID_PATTERN.test(value)) throw invalid([{ field, message: 'must be 1-128 characters of A-Z a-z 0-9 . _ : -' }]);
}

@Injectable()
export class ExecutionsService {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly store: FleetStore,
    private readonly follower: EventFollower,
  ) {}

  /** Validates, accepts (numbering it in its session) and dispatches when it heads the lane. */
  async submit(tenant: string, sessionId: string, body: unknown): Promise<{ accepted: SubmitAccepted; ref: ExecutionRef; deadlineAt: number }> {
    checkId('sessionId', sessionId);
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid([{ field: 'body', message: 'must be a JSON object' }]);
    }
    const parsed = submitExecutionSchema.safeParse(body);
    if (!parsed.success) {
      throw invalid(parsed.error.issues.map((i) => ({ field: i.path.join('.') || 'body', message: i.message })));
    }
    const req = parsed.data;
    const { maxCodeBytes, defaultTimeoutMs, maxTimeoutMs } = this.config.limits;
    const codeBytes = Buffer.byteLength(req.code);
    if (codeBytes > maxCodeBytes) {
      throw new ProblemException('payloadTooLarge', 413, `code is ${codeBytes} bytes; the limit is ${maxCodeBytes}`);
    }
    if (req.code.includes('\u0000')) throw invalid([{ field: 'code', message: 'must not contain NUL characters' }]);
    const now = Date.now();
    if (req.timeoutMs !== undefined && req.timeoutMs > maxTimeoutMs) {
      throw invalid([{ field: 'timeoutMs', message: `must be at most ${maxTimeoutMs}` }]);
    }
    if (req.deadlineAt !== undefined && req.deadlineAt <= now) {
      throw invalid([{ field: 'deadlineAt', message: 'is in the past' }]);
    }
    if (req.deadlineAt !== undefined && req.deadlineAt > now + maxTimeoutMs) {
      throw invalid([{ field: 'deadlineAt', message: `must be within ${maxTimeoutMs} ms from now` }]);
    }
    const deadlineAt = req.deadlineAt ?? now + (req.timeoutMs ?? defaultTimeoutMs);
    const accepted = await this.store.executions.accept({
      tenant,
      sessionId,
      code: req.code,
      acceptedAt: now,
      deadlineAt,
      kernelMode: req.kernelMode ?? 'session',
      reset: req.reset ?? false,
      ownerId: req.ownerId,
      retryOnKernelLoss: req.retryOnKernelLoss ?? false,
    });
    if (accepted.isHead) await this.store.dispatcher.dispatch(accepted.ref, accepted.home);
    return {
      accepted: { executionId: accepted.ref.executionId, sessionId, seq: accepted.seq, status: 'queued' },
      ref: accepted.ref,
      deadlineAt,
    };
  }

  /** Waits for the terminal state (bounded by the deadline plus slack) and answers the execution. */
  async waitForResult(ref: ExecutionRef, deadlineAt: number, signal: AbortSignal): Promise<Execution> {
    let result: Execution | undefined;
    const timeout = AbortSignal.timeout(Math.max(0, deadlineAt - Date.now()) + WAIT_SLACK_MS);
    await this.follower.follow(ref, 0, (e) => e.type === 'result' && (result = e.data), AbortSignal.any([signal, timeout]));
    return result ?? (await this.get(ref));
  }

  async locate(tenant: string, executionId: string): Promise<ExecutionRef> {
    checkId('executionId', executionId);
    const ref = await this.store.executions.locate(tenant, executionId);
    if (!ref) throw notFound(`execution ${executionId}`);
    return ref;
  }

  async get(ref: ExecutionRef): Promise<Execution> {
    const execution = await this.store.executions.get(ref);
    if (!execution) throw notFound(`execution ${ref.executionId}`);
    return execution;
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
