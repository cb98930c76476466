import { Inject, Injectable } from '@nestjs/common';
import { toolAnswerSchema, type ToolAnswer } from '@kernelfleet/contracts';
import type { ApiConfig } from '@kernelfleet/config';
import { FleetStore, type ExecutionRef } from '@kernelfleet/store';
import { checkId } from '../executions/executions.service';
import { invalid, invalidBody, notFound, ProblemException } from '../problems/problem.exception';
import { API_CONFIG } from '../tokens';

/** Executions whose place the service remembers, at most. */
const LOCATED_MAX = 10_000;

/**
 * The client's answers to tool calls (docs/tools.md). The first answer is kept and reaches the
 * kernel through the worker running the execution; the same answer again is a 200, another
 * one a 409; a call that ended unanswered is a 410.
 */
@Injectable()
export class ToolCallsService {
  /** Executions answered lately (tenant + id → where they live), oldest first. */
  private readonly located = new Map<string, ExecutionRef>();

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly store: FleetStore,
  ) {}

  async answer(tenant: string, executionId: string, callId: string, body: unknown): Promise<{ callId: string; ok: boolean }> {
    checkId('executionId', executionId);
    checkId('callId', callId);
    const answer = this.parse(body);
    const ref = await this.locate(tenant, executionId);
    switch (await this.store.toolCalls.answer(ref, callId, answer)) {
      case 'answered':
      case 'same':
        return { callId, ok: answer.ok };
      case 'conflict':
        throw new ProblemException('conflict', 409, `tool call ${callId} was answered before, with another answer`);
      case 'gone':
        throw new ProblemException('gone', 410, `tool call ${callId} has ended without an answer (timed out, or its execution ended)`);
      default:
        throw notFound(`tool call ${callId} of execution ${executionId}`);
    }
  }

  /**
   * Where the execution lives; remembered (an execution never moves), since a cell that calls
   * many tools brings many answers for one execution.
   */
  private async locate(tenant: string, executionId: string): Promise<ExecutionRef> {
    const key = `${tenant}\n${executionId}`;
    const known = this.located.get(key);
    if (known) return known;
    const ref = await this.store.executions.locate(tenant, executionId);
    if (!ref) throw notFound(`execution ${executionId}`);
    if (this.located.size >= LOCATED_MAX) this.located.delete(this.located.keys().next().value!);
    this.located.set(key, ref);
    return ref;
  }

  private parse(body: unknown): ToolAnswer {
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid([{ field: 'body', message: 'must be a JSON object: {"ok": true, "value": …} or {"ok": false, "error": "…"}' }]);
    }
    const parsed = toolAnswerSchema.safeParse(body);
    if (!parsed.success) throw invalidBody(parsed.error.issues);
    const answer = parsed.data;
    const max = this.config.limits.toolResultMaxBytes;
    const bytes = answer.ok ? Buffer.byteLength(JSON.stringify(answer.value)) : Buffer.byteLength(answer.error);
    if (bytes > max) {
      throw new ProblemException('payloadTooLarge', 413, `the answer is ${bytes} bytes; the limit (TOOL_RESULT_MAX_BYTES) is ${max}; the call still waits for an answer`);
    }
    return answer;
  }
}
