import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { z } from 'zod';
import { createApiKeySchema, EXECUTION_STATUSES, FILE_OPS, KERNEL_MODES, PROBLEM_TYPES, STATE_LOST_REASONS, submitExecutionSchema } from '@kernelfleet/contracts';

/**
 * An OpenAPI 3.0 schema from a zod schema of libs/contracts (the one source of the request
 * shapes). zod writes `exclusiveMinimum: true` for `.positive()` without the `minimum: 0` that
 * OpenAPI 3.0 needs beside it: an integer gets the plain `minimum: 1` instead (which every
 * reader understands), a number the missing `minimum: 0`.
 */
export function openApiSchemaOf(schema: z.ZodType): SchemaObject {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return fixExclusiveBounds(json) as SchemaObject;
}

function fixExclusiveBounds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(fixExclusiveBounds);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = fixExclusiveBounds(value);
  for (const [flag, bound, step] of [['exclusiveMinimum', 'minimum', 1], ['exclusiveMaximum', 'maximum', -1]] as const) {
    if (out[flag] !== true) continue;
    const value = typeof out[bound] === 'number' ? (out[bound] as number) : 0;
    if (out.type === 'integer') {
      out[bound] = value + step;
      delete out[flag];
    } else {
      out[bound] = value;
    }
  }
  return out;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const int = (description?: string): SchemaObject => ({ type: 'integer', ...(description ? { description } : {}) });
const str = (description?: string): SchemaObject => ({ type: 'string', ...(description ? { description } : {}) });
const epochMs = (description: string): SchemaObject => ({ type: 'integer', format: 'int64', description: `${description} (milliseconds since the epoch)` });
const object = (properties: Record<string, SchemaObject | { $ref: string }>, required: string[], description?: string): SchemaObject => ({
  type: 'object',
  ...(description ? { description } : {}),
  properties,
  required,
});

/**
 * Component schemas of the document. Requests come from the zod contracts; responses mirror the
 * wire interfaces of libs/contracts (`Execution`, `PythonResult`, `SubmitAccepted`, …).
 */
export function componentSchemas(): Record<string, SchemaObject> {
  return {
    SubmitExecution: { ...openApiSchemaOf(submitExecutionSchema), description: 'Body of a submit. Unknown fields are refused (400).' },
    CreateApiKey: openApiSchemaOf(createApiKeySchema),
    ExecutionStatus: { type: 'string', enum: [...EXECUTION_STATUSES] },
    SubmitAccepted: object(
      { executionId: str(), sessionId: str(), seq: int('per-session accept order, from 1'), status: ref('ExecutionStatus') },
      ['executionId', 'sessionId', 'seq', 'status'],
    ),
    KernelInfo: object(
      {
        workerId: str(),
        generation: int('counts the kernels this session has had'),
        stateLost: { type: 'boolean', description: 'the session state went away without being asked for' },
        stateLostReason: {
          type: 'string',
          enum: [...STATE_LOST_REASONS],
          description: 'why, on the first result of a new kernel: evicted for another session, culled when idle, lost with its worker, died',
        },
        restarted: { type: 'boolean', description: 'a new kernel was started for this execution' },
      },
      ['workerId', 'generation', 'stateLost', 'restarted'],
    ),
    DisplayOutput: {
      oneOf: [
        object({ type: { type: 'string', enum: ['image'] }, mimeType: { type: 'string', enum: ['image/png', 'image/jpeg'] }, data: str('base64') }, ['type', 'mimeType', 'data']),
        object({ type: { type: 'string', enum: ['json'] }, data: {} }, ['type', 'data']),
        object({ type: { type: 'string', enum: ['text'] }, text: str(), markdown: { type: 'boolean' } }, ['type', 'text', 'markdown']),
        object({ type: { type: 'string', enum: ['status'] }, event: { description: 'a status event: from the status MIME type, or a tool call or answer' } }, ['type', 'event']),
      ],
    },
    PythonResult: object(
      {
        output: str('sanitised output: the first 20 KB and the last 50 KB when it overflowed'),
        exitCode: { type: 'integer', enum: [0, 1], nullable: true, description: '0 ok, 1 error or stdin refusal, null when cancelled or timed out' },
        cancelled: { type: 'boolean' },
        truncated: { type: 'boolean' },
        artifactId: str('present when the full output is kept as the artifact'),
        totalLines: int(),
        totalBytes: int(),
        outputLines: int(),
        outputBytes: int(),
        displayOutputs: { type: 'array', items: ref('DisplayOutput') },
        stdinRequested: { type: 'boolean' },
      },
      ['output', 'exitCode', 'cancelled', 'truncated', 'totalLines', 'totalBytes', 'outputLines', 'outputBytes', 'displayOutputs', 'stdinRequested'],
    ),
    Execution: object(
      {
        executionId: str(),
        sessionId: str(),
        seq: int(),
        status: ref('ExecutionStatus'),
        phase: { type: 'string', enum: ['queue', 'kernel_start', 'run'], description: 'where an execution that ended early was' },
        ownerId: str(),
        kernelMode: { type: 'string', enum: [...KERNEL_MODES] },
        result: ref('PythonResult'),
        kernel: ref('KernelInfo'),
        pendingToolCalls: { type: 'array', items: ref('ToolCall'), description: 'while running: tool calls that wait for the client\'s answer' },
        file: ref('FileOpOutcome'),
        timings: object(
          {
            acceptedAt: epochMs('accepted'),
            deadlineAt: epochMs('the deadline'),
            startedAt: epochMs('started'),
            finishedAt: epochMs('reached its terminal state'),
          },
          ['acceptedAt', 'deadlineAt'],
        ),
      },
      ['executionId', 'sessionId', 'seq', 'status', 'kernelMode', 'timings'],
      '`result` is present once the status is terminal; a file operation (docs/files.md) has `file` instead.',
    ),
    Session: object(
      {
        sessionId: str(),
        workerId: { type: 'string', nullable: true, description: 'home worker, or null' },
        kernel: object(
          { generation: int(), state: { type: 'string', enum: ['none', 'starting', 'idle', 'dead', 'lost', 'culled', 'evicted'] } },
          ['generation', 'state'],
        ),
        files: {
          type: 'string',
          enum: ['kept', 'lost', 'none'],
          description: 'kept: in the session\'s folder on its home worker; lost: with its kernel (worker lost or drained, kernel culled); none: never any, or disposed',
        },
        pending: int('queued and running executions'),
        owners: { type: 'array', items: str() },
        lastActivityAt: { type: 'integer', format: 'int64', nullable: true },
      },
      ['sessionId', 'workerId', 'kernel', 'files', 'pending', 'owners', 'lastActivityAt'],
    ),
    FileWritten: object({ path: str(), size: int('bytes'), sha256: str('hex digest of the bytes written') }, ['path', 'size', 'sha256']),
    TarWritten: object({ path: str('the folder unpacked into (\'\' for the session\'s folder)'), files: int(), bytes: int() }, ['path', 'files', 'bytes']),
    FileList: object(
      {
        files: {
          type: 'array',
          items: object({ path: str(), size: int('bytes'), modifiedAt: epochMs('last changed') }, ['path', 'size', 'modifiedAt']),
        },
        nextCursor: { type: 'string', nullable: true, description: 'pass as cursor for the next page; null on the last' },
      },
      ['files', 'nextCursor'],
    ),
    FileOpOutcome: object(
      {
        op: { type: 'string', enum: [...FILE_OPS] },
        path: str(),
        error: object({ status: int('the HTTP status answered'), code: str(), detail: str() }, ['status', 'code', 'detail']),
        written: { allOf: [ref('FileWritten'), object({ created: { type: 'boolean' } }, ['created'])] },
        list: ref('FileList'),
        tar: ref('TarWritten'),
        bytes: int('bytes sent by a read'),
      },
      ['op', 'path'],
      'What a file operation did, or why not.',
    ),
    ToolCall: object(
      {
        callId: str('answer it with POST /v1/executions/{executionId}/tool-calls/{callId}'),
        name: str('a tool the execution declared'),
        args: { type: 'object', additionalProperties: true, description: 'the arguments Python passed (JSON)' },
        deadlineAt: epochMs('when the call ends unanswered (toolCallTimeoutMs or the execution\'s deadline)'),
      },
      ['callId', 'name', 'args', 'deadlineAt'],
    ),
    ToolAnswer: {
      oneOf: [
        object({ ok: { type: 'boolean', enum: [true] }, value: { description: 'any JSON: what the Python call returns' } }, ['ok', 'value']),
        object({ ok: { type: 'boolean', enum: [false] }, error: str('what Python\'s ToolError says') }, ['ok', 'error']),
      ],
      description: 'The client\'s answer to a tool call. Unknown fields are refused (400).',
    },
    ToolAnswered: object({ callId: str(), ok: { type: 'boolean' } }, ['callId', 'ok']),
    SessionCancelled: object({ sessionId: str(), cancelled: int('queued executions cancelled') }, ['sessionId', 'cancelled']),
    SessionsDisposal: object(
      { disposed: { type: 'array', items: str(), description: 'sessions that had a kernel or pending executions, sorted: disposed' } },
      ['disposed'],
    ),
    OwnerDisposal: object(
      {
        ownerId: str(),
        disposed: { type: 'array', items: str(), description: 'sessions the owner alone held: shut down' },
        detached: { type: 'array', items: str(), description: 'shared sessions the owner was taken off' },
      },
      ['ownerId', 'disposed', 'detached'],
    ),
    ApiKeyInfo: object({ keyId: str(), tenant: str(), label: str(), createdAt: epochMs('created') }, ['keyId', 'tenant', 'label', 'createdAt']),
    CreatedApiKey: {
      allOf: [ref('ApiKeyInfo'), object({ key: str('the key itself: shown this once only') }, ['key'])],
    },
    ApiKeyList: object({ keys: { type: 'array', items: ref('ApiKeyInfo') } }, ['keys']),
    HealthStatus: object({ status: { type: 'string', enum: ['ok'] } }, ['status']),
    Problem: object(
      {
        type: { type: 'string', enum: Object.values(PROBLEM_TYPES) },
        title: str(),
        status: int(),
        detail: str(),
        instance: str(),
        errors: {
          type: 'array',
          description: 'validation problems: one entry per offending field, header or part of the request',
          items: object({ field: str(), message: str() }, ['field', 'message']),
        },
        quota: str('the tenant quota that refused the request (429)'),
        limit: int('its limit (429)'),
        code: str('a file operation\'s case, e.g. not_found, link, quota_exceeded (docs/files.md)'),
      },
      ['type', 'title', 'status'],
      'RFC 9457 problem details',
    ),
  };
}
