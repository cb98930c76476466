import type { ParameterObject, ResponseObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { EXECUTION_EVENT_TYPES } from '@kernelfleet/contracts';

/** How a route is authenticated. */
export type RouteAuth = 'tenant' | 'admin' | 'none';

/** What the document says of one route beyond what Nest's route table gives. */
export interface OperationDoc {
  summary: string;
  description?: string;
  tag: string;
  auth: RouteAuth;
  /** Query and header parameters (path parameters come from the route). */
  parameters?: ParameterObject[];
  /** A component schema name (application/json). */
  body?: string;
  /** A body of raw bytes (any content type): what it is. */
  bytesBody?: string;
  /** Success answers. */
  responses: Record<string, ResponseObject>;
  /** Problem statuses the route can answer (application/problem+json). */
  errors: number[];
}

const json = (schema: string, description: string, headers?: ResponseObject['headers']): ResponseObject => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});
const text = (mediaType: string, description: string): ResponseObject => ({ description, content: { [mediaType]: { schema: { type: 'string' } } } });
const bytes = (mediaType: string, description: string, headers?: ResponseObject['headers']): ResponseObject => ({
  description,
  ...(headers ? { headers } : {}),
  content: { [mediaType]: { schema: { type: 'string', format: 'binary' } } },
});

/** Query parameters of the session files routes (docs/files.md). */
const FORMAT_TAR: ParameterObject = {
  name: 'format',
  in: 'query',
  required: false,
  schema: { type: 'string', enum: ['tar'] },
  description: 'tar: the path is a folder, and the body (or the answer) is a tar archive of it',
};
const FILE_TIMEOUT: ParameterObject = {
  name: 'timeoutMs',
  in: 'query',
  required: false,
  schema: { type: 'integer', minimum: 1 },
  description: 'deadline of the operation (its turn in the lane and the transfer); FILE_TIMEOUT_MS when left out',
};
const FILES_ORDER =
  'The operation takes its turn in the session\'s lane like an execution: it sees what earlier executions wrote, and later ' +
  'ones see what it did. It runs on the session\'s home worker, in the session\'s folder, as the kernel\'s own uid; ' +
  'symbolic links are never followed.';

/** Every problem a request with a JSON body can get before routing (body parser). */
const BODY = [400, 413, 415];
/** A tenant route reading the store. */
const TENANT = [400, 401, 404, 405, 503];
const ADMIN = [400, 401, 404, 405, 503];
/** A session files route: a tenant route's problems, a link or folder in the way (409), a quota (429). */
const FILES = [...TENANT, 409, 429];

/** `?events=`, on the event stream of a submit and of GET …/events. */
const EVENTS_PARAMETER = {
  name: 'events',
  in: 'query',
  required: false,
  schema: { type: 'string' },
  description:
    `the event types to stream, comma-separated (${EXECUTION_EVENT_TYPES.join(', ')}); \`result\` always comes. ` +
    'Only with the event stream. `events=result` streams the terminal execution alone',
} as const;

/**
 * The routes of the api, keyed `METHOD /path/{param}` as the OpenAPI document names them.
 * test/e2e/observability.e2e-spec.ts checks that this covers every route the controllers serve.
 */
export const API_OPERATIONS: Record<string, OperationDoc> = {
  'POST /v1/sessions/{sessionId}/executions': {
    tag: 'executions',
    auth: 'tenant',
    summary: 'Submit code to run in the session',
    description:
      'Accepts the execution (numbered in its session), queues it behind the session\'s earlier executions and answers 202. ' +
      'With `wait=true` the answer is 200 with the terminal execution (or the execution as it is at deadline + 15 s). ' +
      'With `Accept: text/event-stream` (and no `wait=true`) the answer is 200 with the execution\'s events from the first, ' +
      'as `GET /v1/executions/{executionId}/events` gives them, `Location` and `Execution-Seq` among its headers.',
    body: 'SubmitExecution',
    parameters: [
      { name: 'wait', in: 'query', required: false, schema: { type: 'string', enum: ['true', 'false'] }, description: 'wait for the terminal state' },
      EVENTS_PARAMETER,
      {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        schema: { type: 'string', pattern: '^[\\x20-\\x7E]{1,255}$' },
        description: 'the same key and body answer the same execution; another body answers 422',
      },
    ],
    responses: {
      '202': json('SubmitAccepted', 'Accepted', {
        Location: { description: '/v1/executions/{executionId}', schema: { type: 'string' } },
        'Idempotent-Replayed': { description: '`true` when an Idempotency-Key answered an earlier execution', schema: { type: 'string' } },
      }),
      '200': {
        description: 'With wait=true: the execution, terminal unless its deadline + 15 s passed first. With Accept: text/event-stream: its events',
        headers: {
          Location: { description: 'with the event stream: /v1/executions/{executionId}', schema: { type: 'string' } },
          'Execution-Seq': { description: 'with the event stream: the execution\'s number in its session', schema: { type: 'integer' } },
        },
        content: {
          'application/json': { schema: { $ref: '#/components/schemas/Execution' } },
          'text/event-stream': { schema: { type: 'string' } },
        },
      },
    },
    errors: [...BODY, 401, 405, 409, 422, 429, 503],
  },
  'GET /v1/executions/{executionId}': {
    tag: 'executions',
    auth: 'tenant',
    summary: 'The execution',
    responses: { '200': json('Execution', 'The execution') },
    errors: TENANT,
  },
  'GET /v1/executions/{executionId}/events': {
    tag: 'executions',
    auth: 'tenant',
    summary: 'The execution\'s events as Server-Sent Events',
    description:
      'Events `queued`, `started`, `stdout`, `stderr`, `display`, `status`, `tool_call` (a ToolCall to answer), ' +
      '`tool_result` (`{callId, ok}`, `{callId, timedOut: true}` or `{callId, ended: true}`), `result` (last; the stream then closes). ' +
      '`id:` is the event seq; `Last-Event-ID` resumes after it. Data is JSON.',
    parameters: [
      { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string', pattern: '^\\s*\\d{1,9}\\s*$' }, description: 'resume after this event seq' },
      EVENTS_PARAMETER,
    ],
    responses: { '200': text('text/event-stream', 'The event stream') },
    errors: TENANT,
  },
  'GET /v1/executions/{executionId}/artifact': {
    tag: 'executions',
    auth: 'tenant',
    summary: 'The full output of an execution whose output overflowed the result',
    responses: { '200': text('text/plain', 'The full sanitised output') },
    errors: TENANT,
  },
  'POST /v1/executions/{executionId}/tool-calls/{callId}': {
    tag: 'executions',
    auth: 'tenant',
    summary: 'Answer a tool call that code in the kernel made (docs/tools.md)',
    description:
      'The first answer returns from the Python call (`ok: false` raises ToolError there). The same answer again is a 200; ' +
      'another answer 409; a call that ended unanswered (timed out, cancelled, the execution over) 410; an answer over ' +
      'TOOL_RESULT_MAX_BYTES 413, and the call still waits.',
    body: 'ToolAnswer',
    responses: { '200': json('ToolAnswered', 'The answer is kept and on its way to the kernel') },
    errors: [...BODY, 401, 404, 405, 409, 410, 503],
  },
  'POST /v1/executions/{executionId}/cancel': {
    tag: 'executions',
    auth: 'tenant',
    summary: 'Cancel a queued (never runs) or running (interrupted) execution',
    responses: { '202': json('Execution', 'The execution: terminal when it was queued, still `running` when it is being interrupted') },
    errors: [...TENANT, 409],
  },
  'GET /v1/sessions/{sessionId}': {
    tag: 'sessions',
    auth: 'tenant',
    summary: 'The session: home worker, kernel generation and state, pending count, owners, last activity',
    responses: { '200': json('Session', 'The session') },
    errors: TENANT,
  },
  'POST /v1/sessions/{sessionId}/cancel-pending': {
    tag: 'sessions',
    auth: 'tenant',
    summary: 'Cancel every queued execution of the session',
    responses: { '200': json('SessionCancelled', 'How many were cancelled') },
    errors: TENANT,
  },
  'DELETE /v1/sessions/{sessionId}': {
    tag: 'sessions',
    auth: 'tenant',
    summary: 'Dispose the session: cancel what is queued, shut its kernel down, end a running execution `cancelled`',
    description:
      'Queued executions end `cancelled` (they never run); the owners are cleared; the kernel is shut down at once, and an ' +
      'execution running on it ends `cancelled` with a notice (a hung cell does not delay it). The next execution starts ' +
      'on a fresh kernel (next generation, `stateLost: false`).',
    responses: { '200': json('SessionCancelled', 'How many queued executions were cancelled') },
    errors: TENANT,
  },
  'DELETE /v1/sessions': {
    tag: 'sessions',
    auth: 'tenant',
    summary: 'Dispose every session of the tenant that has a kernel or pending executions',
    description:
      'Each is disposed as `DELETE /v1/sessions/{sessionId}` does. Per-call executions run on kernels of their own and are ' +
      'not stopped; other tenants\' sessions are never touched.',
    responses: { '200': json('SessionsDisposal', 'The disposed sessions (sorted; empty when there were none)') },
    errors: [401, 405, 503],
  },
  'DELETE /v1/owners/{ownerId}': {
    tag: 'owners',
    auth: 'tenant',
    summary: 'Dispose the sessions this owner alone holds; detach it from shared ones',
    responses: { '200': json('OwnerDisposal', 'What was disposed and detached') },
    errors: TENANT,
  },
  'PUT /v1/sessions/{sessionId}/files/{path}': {
    tag: 'files',
    auth: 'tenant',
    summary: 'Write a file into the session\'s folder (folders on the way are created; an existing file is replaced)',
    description:
      `${FILES_ORDER} The body is the file's bytes, streamed (FILE_MAX_BYTES per file, SESSION_FILES_MAX_BYTES per ` +
      'session: 413). With `format=tar` the path is a folder and the body a tar archive (regular files and folders only) ' +
      'unpacked into it; nothing changes unless the whole archive is good.',
    bytesBody: 'the file\'s bytes, or a tar archive with format=tar',
    parameters: [FORMAT_TAR, FILE_TIMEOUT],
    responses: {
      '201': json('FileWritten', 'Created'),
      '200': json('FileWritten', 'Replaced (with format=tar: TarWritten)'),
    },
    errors: [...FILES, 413],
  },
  'PUT /v1/sessions/{sessionId}/files': {
    tag: 'files',
    auth: 'tenant',
    summary: 'Unpack a tar archive into the session\'s folder (format=tar)',
    description: `${FILES_ORDER} Regular files and folders only; nothing changes unless the whole archive is good.`,
    bytesBody: 'a tar archive',
    parameters: [{ ...FORMAT_TAR, required: true }, FILE_TIMEOUT],
    responses: { '200': json('TarWritten', 'Unpacked') },
    errors: [...FILES, 413],
  },
  'GET /v1/sessions/{sessionId}/files/{path}': {
    tag: 'files',
    auth: 'tenant',
    summary: 'Read a file of the session\'s folder (streamed, with Content-Length)',
    description: `${FILES_ORDER} With \`format=tar\` the path is a folder and the answer a tar archive of it.`,
    parameters: [FORMAT_TAR, FILE_TIMEOUT],
    responses: {
      '200': bytes('application/octet-stream', 'The file\'s bytes (application/x-tar with format=tar)', {
        'Content-Length': { description: 'the file\'s size (not sent for an archive)', schema: { type: 'integer' } },
      }),
    },
    errors: FILES,
  },
  'GET /v1/sessions/{sessionId}/files': {
    tag: 'files',
    auth: 'tenant',
    summary: 'List the session\'s files (paged, sorted by path), or with format=tar download the whole folder',
    description: `${FILES_ORDER} Regular files only; links, pipes and sockets are left out.`,
    parameters: [
      { name: 'prefix', in: 'query', required: false, schema: { type: 'string' }, description: 'only paths starting with this' },
      { name: 'cursor', in: 'query', required: false, schema: { type: 'string' }, description: 'the nextCursor of the previous page' },
      { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 }, description: 'at most this many (1000)' },
      FORMAT_TAR,
      FILE_TIMEOUT,
    ],
    responses: { '200': json('FileList', 'One page of files (with format=tar: the folder as application/x-tar)') },
    errors: FILES,
  },
  'DELETE /v1/sessions/{sessionId}/files/{path}': {
    tag: 'files',
    auth: 'tenant',
    summary: 'Delete a file, or a folder with everything in it (a link is removed itself, never followed)',
    description: FILES_ORDER,
    parameters: [FILE_TIMEOUT],
    responses: { '204': { description: 'Deleted' } },
    errors: FILES,
  },
  'GET /health/live': {
    tag: 'operations',
    auth: 'none',
    summary: 'Liveness: the process serves HTTP',
    responses: { '200': json('HealthStatus', 'Alive') },
    errors: [405],
  },
  'GET /health/ready': {
    tag: 'operations',
    auth: 'none',
    summary: 'Readiness: Redis answers',
    responses: { '200': json('HealthStatus', 'Ready') },
    errors: [405, 503],
  },
  'GET /metrics': {
    tag: 'operations',
    auth: 'none',
    summary: 'Prometheus metrics (text exposition format 0.0.4); see docs/operations.md',
    responses: { '200': text('text/plain', 'Metrics') },
    errors: [405],
  },
  'POST /admin/keys': {
    tag: 'admin',
    auth: 'admin',
    summary: 'Create a stored API key for a tenant (the key is shown this once)',
    description: 'Without ADMIN_KEY configured the /admin routes answer 404 like an unknown route.',
    body: 'CreateApiKey',
    responses: { '201': json('CreatedApiKey', 'The new key') },
    errors: [...BODY, 401, 404, 405, 503],
  },
  'GET /admin/keys': {
    tag: 'admin',
    auth: 'admin',
    summary: 'List stored API keys (never the keys themselves)',
    parameters: [{ name: 'tenant', in: 'query', required: false, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' }, description: 'only this tenant\'s keys' }],
    responses: { '200': json('ApiKeyList', 'The keys') },
    errors: ADMIN,
  },
  'DELETE /admin/keys/{keyId}': {
    tag: 'admin',
    auth: 'admin',
    summary: 'Revoke a stored API key (other api replicas stop accepting it within API_KEY_CACHE_MS)',
    responses: { '200': json('ApiKeyInfo', 'The revoked key') },
    errors: ADMIN,
  },
  'GET /admin': {
    tag: 'admin',
    auth: 'admin',
    summary: 'The fleet page (HTML; updates itself from /admin/fleet.json); see docs/operations.md',
    description: 'Accepts the admin key as a Bearer token or the session cookie of /admin/login; a browser without either is sent to the login page.',
    responses: { '200': text('text/html', 'The page'), '303': { description: 'To /admin/login (page navigations without a session)' } },
    errors: [401, 404, 405],
  },
  'GET /admin/fleet.json': {
    tag: 'admin',
    auth: 'admin',
    summary: 'What the fleet page shows: workers, running executions, sessions, queue depths, rates, p50/p99 queue wait and run time',
    responses: { '200': { description: 'The fleet snapshot', content: { 'application/json': { schema: { type: 'object' } } } } },
    errors: [401, 404, 405, 503],
  },
  'GET /admin/dashboard.js': {
    tag: 'admin',
    auth: 'admin',
    summary: "The fleet page's script",
    responses: { '200': text('text/javascript', 'The script') },
    errors: [401, 404, 405],
  },
  'GET /admin/login': {
    tag: 'admin',
    auth: 'none',
    summary: 'The admin login form (HTML)',
    responses: { '200': text('text/html', 'The form') },
    errors: [404, 405],
  },
  'POST /admin/login': {
    tag: 'admin',
    auth: 'none',
    summary: 'Signs in with the admin key (form: 303 with the session cookie; JSON: 204 with it)',
    responses: { '204': { description: 'Signed in (JSON request); the cookie is set' }, '303': { description: 'Signed in (form); to the page asked for' } },
    errors: [...BODY, 401, 404, 405],
  },
  'POST /admin/logout': {
    tag: 'admin',
    auth: 'none',
    summary: 'Ends the session cookie and goes to the login page',
    responses: { '303': { description: 'To /admin/login' } },
    errors: [404, 405],
  },
};
