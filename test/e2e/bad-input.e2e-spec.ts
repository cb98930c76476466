import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Cluster, Redis } from 'ioredis';
import { Stack, TEST_TENANT } from '../support/stack';
import { expectProblem, type Answer } from '../support/problem-assertions';
import { connectTestRedis, keysMatching } from '../support/redis-client';

jest.setTimeout(60_000);

/**
 * Invariant 12 as a catalogue: every malformed request below is answered with a 4xx
 * application/problem+json naming what was wrong (the field, header or part of the request);
 * none is a 5xx; none enqueues or records anything; and the api still serves afterwards. The
 * decisions behind each answer are in docs/api-errors.md.
 */

const MAX_CODE_BYTES = 1000;
const MAX_TIMEOUT_MS = 60_000;
/** The session every rejected submit names: afterwards its first execution must be seq 1. */
const SESSION = 'bad-input';
const SUBMIT = `/v1/sessions/${SESSION}/executions`;
/** Well-formed, never created. */
const UNKNOWN_EXECUTION = 'ex_000000000000000000000000';
const CODE = 'print(1)';

interface BadRequest {
  /** What is wrong with it (the test's name). */
  name: string;
  method: string;
  path: string;
  /** A JSON value (sent stringified), or the raw body: text or bytes. */
  json?: unknown;
  raw?: string | Uint8Array<ArrayBuffer>;
  /** Headers over the defaults (API key, JSON content type); `null` leaves one out. */
  headers?: Record<string, string | null>;
  /** Header lines written as-is on a raw socket: for bytes `fetch` refuses to send. */
  rawHeaderLines?: string;
  status: number;
  /** What the problem names: in `detail`, and among `errors[].field` when the problem lists them. */
  names: string;
  /** The `Allow` header a 405 answers with. */
  allow?: string;
}

const submit = (name: string, json: unknown, status = 400, names = ''): BadRequest => ({
  name,
  method: 'POST',
  path: SUBMIT,
  json,
  status,
  names,
});
/** A submit whose body has `code` and one more field with a bad value. */
const field = (name: string, key: string, value: unknown): BadRequest => submit(name, { code: CODE, [key]: value }, 400, key);
const rawSubmit = (name: string, raw: string | Uint8Array<ArrayBuffer>, names: string, status = 400): BadRequest => ({
  name,
  method: 'POST',
  path: SUBMIT,
  raw,
  status,
  names,
});

const CATALOGUE: BadRequest[] = [
  // The body is not JSON, or not a JSON object.
  rawSubmit('malformed JSON: truncated', '{"code": "print(1)"', 'body'),
  rawSubmit('malformed JSON: single quotes', "{'code': 'print(1)'}", 'body'),
  rawSubmit('malformed JSON: trailing comma', '{"code": "print(1)",}', 'body'),
  rawSubmit('malformed JSON: NaN', '{"code": "print(1)", "timeoutMs": NaN}', 'body'),
  rawSubmit('an empty body', '', 'code'),
  rawSubmit('a JSON array', '[{"code":"print(1)"}]', 'body'),
  rawSubmit('a JSON string', '"print(1)"', 'body'),
  rawSubmit('a JSON number', '42', 'body'),
  rawSubmit('JSON null', 'null', 'body'),
  rawSubmit('JSON true', 'true', 'body'),
  rawSubmit('bytes that are not UTF-8', new Uint8Array(Buffer.concat([Buffer.from('{"code":"print(\''), Buffer.from([0xff, 0xfe]), Buffer.from('\')"}')])), 'body'),

  // code
  submit('code missing', { timeoutMs: 1000 }, 400, 'code'),
  submit('code a number', { code: 42 }, 400, 'code'),
  submit('code an array', { code: [CODE] }, 400, 'code'),
  submit('code an object', { code: { source: CODE } }, 400, 'code'),
  submit('code null', { code: null }, 400, 'code'),
  submit('code empty', { code: '' }, 400, 'code'),
  rawSubmit('code holding a lone high surrogate (\\ud800)', '{"code":"print(\'\\ud800\')"}', 'code'),
  rawSubmit('code holding a lone low surrogate (\\udfff)', '{"code":"x = \'\\udfff\'"}', 'code'),
  rawSubmit('code holding a reversed surrogate pair', '{"code":"x = \'\\ude00\\ud83d\'"}', 'code'),
  rawSubmit('code holding NUL', '{"code":"print(1)\\u0000"}', 'code'),
  submit('code over MAX_CODE_BYTES', { code: `# ${'x'.repeat(MAX_CODE_BYTES)}` }, 413, 'code'),
  submit('code over MAX_CODE_BYTES in multi-byte characters', { code: `# ${'é'.repeat(MAX_CODE_BYTES / 2)}` }, 413, 'code'),
  submit('a body over the body size limit', { code: CODE, padding: 'p'.repeat(512 * 1024) }, 413, 'body'),

  // timeoutMs
  field('timeoutMs negative', 'timeoutMs', -5),
  field('timeoutMs zero', 'timeoutMs', 0),
  field('timeoutMs over MAX_TIMEOUT_MS', 'timeoutMs', MAX_TIMEOUT_MS + 1),
  field('timeoutMs huge', 'timeoutMs', 1e20),
  field('timeoutMs fractional', 'timeoutMs', 1.5),
  field('timeoutMs a numeric string', 'timeoutMs', '1000'),
  field('timeoutMs null', 'timeoutMs', null),
  rawSubmit('timeoutMs beyond double range (1e400, parsed as Infinity)', '{"code":"print(1)","timeoutMs":1e400}', 'timeoutMs'),

  // deadlineAt
  field('deadlineAt in the past', 'deadlineAt', Date.now() - 1_000),
  field('deadlineAt beyond MAX_TIMEOUT_MS from now', 'deadlineAt', Date.now() + MAX_TIMEOUT_MS + 60_000),
  field('deadlineAt not a number', 'deadlineAt', 'tomorrow'),
  field('deadlineAt an ISO date', 'deadlineAt', new Date(Date.now() + 10_000).toISOString()),
  field('deadlineAt fractional', 'deadlineAt', Date.now() + 10_000.5),
  field('deadlineAt negative', 'deadlineAt', -1),

  // the other fields
  field('reset a string', 'reset', 'yes'),
  field('reset a number', 'reset', 1),
  field('reset null', 'reset', null),
  field('kernelMode unknown', 'kernelMode', 'forever'),
  field('kernelMode a number', 'kernelMode', 1),
  field('kernelMode in another case', 'kernelMode', 'Session'),
  field('ownerId a number', 'ownerId', 5),
  field('ownerId empty', 'ownerId', ''),
  field('ownerId with a space', 'ownerId', 'no spaces allowed'),
  field('ownerId of 129 characters', 'ownerId', 'o'.repeat(129)),
  field('ownerId with a slash', 'ownerId', 'a/b'),
  field('ownerId non-ASCII', 'ownerId', 'café'),
  field('retryOnKernelLoss a number', 'retryOnKernelLoss', 1),
  field('retryOnKernelLoss a string', 'retryOnKernelLoss', 'true'),
  field('an unknown field (typo of timeoutMs)', 'timeoutMS', 1000),
  field('an unknown field named __proto__', '__proto__', { polluted: true }),

  // Ids in the path: 1-128 of [A-Za-z0-9._:-].
  ...(
    [
      ['129 characters', 's'.repeat(129)],
      ['a space', 'has%20space'],
      ['an encoded slash', 'a%2Fb'],
      ['an encoded NUL', 'nul%00'],
      ['a non-ASCII character', 'caf%C3%A9'],
      ['braces', '%7Bx%7D'],
    ] as const
  ).flatMap(([what, id]): BadRequest[] => [
    { name: `sessionId with ${what} (submit)`, method: 'POST', path: `/v1/sessions/${id}/executions`, json: { code: CODE }, status: 400, names: 'sessionId' },
    { name: `sessionId with ${what} (GET session)`, method: 'GET', path: `/v1/sessions/${id}`, status: 400, names: 'sessionId' },
    { name: `executionId with ${what}`, method: 'GET', path: `/v1/executions/${id}`, status: 400, names: 'executionId' },
    { name: `ownerId with ${what} (dispose owner)`, method: 'DELETE', path: `/v1/owners/${id}`, status: 400, names: 'ownerId' },
  ]),
  { name: 'sessionId with an encoded slash (cancel-pending)', method: 'POST', path: '/v1/sessions/a%2Fb/cancel-pending', status: 400, names: 'sessionId' },
  { name: 'sessionId with an encoded slash (DELETE session)', method: 'DELETE', path: '/v1/sessions/a%2Fb', status: 400, names: 'sessionId' },
  { name: 'executionId with a space (events)', method: 'GET', path: '/v1/executions/has%20space/events', status: 400, names: 'executionId' },
  { name: 'executionId with a space (cancel)', method: 'POST', path: '/v1/executions/has%20space/cancel', status: 400, names: 'executionId' },
  { name: 'a path segment that is not valid percent-encoding', method: 'GET', path: '/v1/sessions/%E0%A4%A', status: 400, names: 'path' },

  // Idempotency-Key: 1-255 printable ASCII characters.
  { ...submit('Idempotency-Key empty', { code: CODE }, 400, 'Idempotency-Key'), headers: { 'idempotency-key': '' } },
  { ...submit('Idempotency-Key of 256 characters', { code: CODE }, 400, 'Idempotency-Key'), headers: { 'idempotency-key': 'k'.repeat(256) } },
  { ...submit('Idempotency-Key with a tab', { code: CODE }, 400, 'Idempotency-Key'), headers: { 'idempotency-key': 'key\twith-tab' } },
  { ...submit('Idempotency-Key non-ASCII', { code: CODE }, 400, 'Idempotency-Key'), headers: { 'idempotency-key': 'cl\u00e9' } },
  { ...submit('Idempotency-Key with a control character (0x01)', { code: CODE }, 400, 'Idempotency-Key'), rawHeaderLines: 'Idempotency-Key: key\x01x\r\n' },
  { ...submit('Idempotency-Key with DEL (0x7f)', { code: CODE }, 400, 'Idempotency-Key'), rawHeaderLines: 'Idempotency-Key: key\x7fx\r\n' },
  { ...submit('Idempotency-Key with NUL', { code: CODE }, 400, 'Idempotency-Key'), rawHeaderLines: 'Idempotency-Key: key\x00x\r\n' },
  { ...submit('request headers over the size limit', { code: CODE }, 431, 'headers'), rawHeaderLines: `X-Padding: ${'p'.repeat(20 * 1024)}\r\n` },

  // Last-Event-ID: the decimal seq of an event (checked before the execution is looked up).
  ...['abc', '-1', '1.5', '1e3', '12345678901', '0x10'].map(
    (value): BadRequest => ({
      name: `Last-Event-ID ${JSON.stringify(value)}`,
      method: 'GET',
      path: `/v1/executions/${UNKNOWN_EXECUTION}/events`,
      headers: { 'last-event-id': value },
      status: 400,
      names: 'Last-Event-ID',
    }),
  ),

  // Query values.
  { ...submit('wait=maybe', { code: CODE }, 400, 'wait'), path: `${SUBMIT}?wait=maybe` },
  { ...submit('wait empty', { code: CODE }, 400, 'wait'), path: `${SUBMIT}?wait=` },
  { ...submit('wait given twice', { code: CODE }, 400, 'wait'), path: `${SUBMIT}?wait=true&wait=false` },
  { ...submit('wait=TRUE (values are lower case)', { code: CODE }, 400, 'wait'), path: `${SUBMIT}?wait=TRUE` },

  // Content types.
  { ...rawSubmit('a text/plain body', CODE, 'Content-Type', 415), headers: { 'content-type': 'text/plain' } },
  { ...rawSubmit('a form body', 'code=print(1)', 'Content-Type', 415), headers: { 'content-type': 'application/x-www-form-urlencoded' } },
  { ...rawSubmit('an XML body', '<code>print(1)</code>', 'Content-Type', 415), headers: { 'content-type': 'application/xml' } },
  { ...rawSubmit('a body without Content-Type', new TextEncoder().encode('{"code":"print(1)"}'), 'Content-Type', 415), headers: { 'content-type': null } },
  { ...rawSubmit('JSON in latin1', '{"code":"print(1)"}', 'Content-Type', 415), headers: { 'content-type': 'application/json; charset=latin1' } },
  { ...rawSubmit('JSON sent gzip-encoded', new Uint8Array(gzipSync('{"code":"print(1)"}')), 'gzip', 415), headers: { 'content-encoding': 'gzip' } },

  // Unknown ids and unknown routes.
  { name: 'an unknown execution', method: 'GET', path: `/v1/executions/${UNKNOWN_EXECUTION}`, status: 404, names: UNKNOWN_EXECUTION },
  { name: 'events of an unknown execution', method: 'GET', path: `/v1/executions/${UNKNOWN_EXECUTION}/events`, status: 404, names: UNKNOWN_EXECUTION },
  { name: 'artifact of an unknown execution', method: 'GET', path: `/v1/executions/${UNKNOWN_EXECUTION}/artifact`, status: 404, names: UNKNOWN_EXECUTION },
  { name: 'cancel of an unknown execution', method: 'POST', path: `/v1/executions/${UNKNOWN_EXECUTION}/cancel`, status: 404, names: UNKNOWN_EXECUTION },
  { name: 'an unknown session', method: 'GET', path: '/v1/sessions/never-used', status: 404, names: 'never-used' },
  { name: 'cancel-pending of an unknown session', method: 'POST', path: '/v1/sessions/never-used/cancel-pending', status: 404, names: 'never-used' },
  { name: 'DELETE of an unknown session', method: 'DELETE', path: '/v1/sessions/never-used', status: 404, names: 'never-used' },
  { name: 'DELETE of an unknown owner', method: 'DELETE', path: '/v1/owners/never-used', status: 404, names: 'never-used' },
  { name: 'an unknown route under /v1', method: 'GET', path: '/v1/nothing-here', status: 404, names: '/v1/nothing-here' },
  { name: 'an unknown version', method: 'POST', path: '/v2/sessions/x/executions', json: { code: CODE }, status: 404, names: '/v2/sessions/x/executions' },
  { name: 'an unknown sub-resource', method: 'GET', path: `/v1/executions/${UNKNOWN_EXECUTION}/nope`, status: 404, names: 'nope' },
  { name: 'the root', method: 'GET', path: '/', status: 404, names: 'GET /' },
  // The body is read before the route is looked at (docs/api-errors.md, order of checks).
  { name: 'malformed JSON sent to an unknown path', method: 'POST', path: '/v2/sessions/x/executions', raw: '{"code": ', status: 400, names: 'body' },

  // A known path with a method it does not serve.
  { name: 'GET on the submit route', method: 'GET', path: SUBMIT, status: 405, names: 'GET', allow: 'POST' },
  { name: 'PUT on the submit route', method: 'PUT', path: SUBMIT, json: { code: CODE }, status: 405, names: 'PUT', allow: 'POST' },
  { name: 'PATCH on a session', method: 'PATCH', path: `/v1/sessions/${SESSION}`, json: {}, status: 405, names: 'PATCH', allow: 'DELETE, GET, HEAD' },
  { name: 'DELETE on an execution', method: 'DELETE', path: `/v1/executions/${UNKNOWN_EXECUTION}`, status: 405, names: 'DELETE', allow: 'GET, HEAD' },
  { name: 'GET on cancel', method: 'GET', path: `/v1/executions/${UNKNOWN_EXECUTION}/cancel`, status: 405, names: 'GET', allow: 'POST' },
  { name: 'POST on an owner', method: 'POST', path: '/v1/owners/o1', json: {}, status: 405, names: 'POST', allow: 'DELETE' },
  { name: 'POST on a health probe', method: 'POST', path: '/health/live', status: 405, names: 'POST', allow: 'GET, HEAD' },
];

/** The request, sent with fetch (or on a raw socket when it holds bytes fetch refuses). */
async function send(stack: Stack, c: BadRequest): Promise<Answer> {
  const headers: Record<string, string> = { ...stack.headers() };
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    if (value === null) delete headers[name];
    else headers[name] = value;
  }
  const body = c.raw ?? (c.json === undefined ? undefined : JSON.stringify(c.json));
  if (c.rawHeaderLines !== undefined) return sendRaw(stack.url, c.method, c.path, headers, c.rawHeaderLines, String(body ?? ''));
  const res = await fetch(`${stack.url}${c.path}`, { method: c.method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: parsed(text) };
}

function parsed(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One HTTP/1.1 request written byte for byte; answers when the server closes or ends the body. */
function sendRaw(url: string, method: string, path: string, headers: Record<string, string>, extraLines: string, body: string): Promise<Answer> {
  const { hostname, port } = new URL(url);
  const head =
    `${method} ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n` +
    Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    extraLines +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A server that answers and closes before reading everything may reset the connection.
    socket.on('error', (error) => chunks.length === 0 && reject(error));
    socket.on('close', () => {
      const response = Buffer.concat(chunks).toString('utf8');
      const [headText, ...rest] = response.split('\r\n\r\n');
      const [statusLine, ...headerLines] = headText.split('\r\n');
      const answerHeaders = new Headers();
      for (const line of headerLines) answerHeaders.append(line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim());
      const text = rest.join('\r\n\r\n');
      resolve({ status: Number(statusLine.split(' ')[1]), headers: answerHeaders, text, json: parsed(text) });
    });
    socket.write(Buffer.from(head + body, 'latin1'));
  });
}

/** Keys under the stack's prefix that only an accepted (or half-accepted) execution writes. */
async function executionKeys(redis: Redis | Cluster, prefix: string): Promise<string[]> {
  const keys = await keysMatching(redis, `${prefix}:*`);
  const bullQueueState = /:bull:\{[^}]+\}:[^:]+:(wait|active|paused|prioritized|delayed|completed|failed|waiting-children)$/;
  return keys
    .filter(
      (key) =>
        key.startsWith(`${prefix}:{`) || // session lanes, seq, info, owners, executions
        key.startsWith(`${prefix}:xid:`) ||
        key.startsWith(`${prefix}:idem:`) ||
        key.startsWith(`${prefix}:owner:`) ||
        key === `${prefix}:deadlines` ||
        bullQueueState.test(key) ||
        /:bull:\{[^}]+\}:[^:]+:ex_/.test(key), // a job (its id is the execution id)
    )
    .sort();
}

describe('bad input (invariant 12)', () => {
  let stack: Stack;
  let redis: Redis | Cluster;

  beforeAll(async () => {
    stack = await Stack.start({ apiEnv: { MAX_CODE_BYTES: String(MAX_CODE_BYTES), MAX_TIMEOUT_MS: String(MAX_TIMEOUT_MS) } });
    redis = connectTestRedis();
  }, 90_000);
  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  it('has a catalogue of at least 40 distinct malformed requests', () => {
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CATALOGUE.map((c) => c.name)).size).toBe(CATALOGUE.length);
  });

  it.each(CATALOGUE.map((c) => [`${c.status} to ${c.name}`, c] as const))('answers %s', async (_name, c) => {
    const res = await send(stack, c);
    expectProblem(res, c.status);
    expect(res.json.detail).toContain(c.names);
    if (res.json.errors) expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(c.names);
    if (c.allow) expect(res.headers.get('allow')).toBe(c.allow);
  });

  it('recorded and enqueued nothing for any of them', async () => {
    expect(await executionKeys(redis, stack.prefix)).toEqual([]);
    for (const session of [SESSION, 'never-used']) {
      expectProblem(await stack.request('GET', `/v1/sessions/${session}`), 404);
    }
  });

  it('still serves: the session the bad requests named starts at seq 1, and the limits themselves are accepted', async () => {
    const first = await stack.run(SESSION, { code: 'print(6 * 7)' });
    expect(first).toMatchObject({ status: 'completed', seq: 1, result: { output: '42\n' } });

    const atLimit = 'print(1)#'.padEnd(MAX_CODE_BYTES, 'x');
    expect(Buffer.byteLength(atLimit)).toBe(MAX_CODE_BYTES);
    const id128 = `Aa0._:-${'s'.repeat(121)}`;
    expect(id128).toHaveLength(128);
    const edge = await stack.run(id128, { code: atLimit, timeoutMs: MAX_TIMEOUT_MS, ownerId: id128 });
    expect(edge).toMatchObject({ status: 'completed', sessionId: id128, result: { output: '1\n' } });
    // A paired surrogate (an emoji) is well-formed text and runs.
    const emoji = await stack.run(SESSION, { code: "print('\u{1F600}')" });
    expect(emoji.result?.output).toBe('\u{1F600}\n');
    // A valid Idempotency-Key of the full allowed length, with spaces and punctuation.
    const keyed = await stack.request('POST', SUBMIT, { code: CODE }, { headers: { 'idempotency-key': `a b~!${'k'.repeat(250)}` } });
    expect(keyed.status).toBe(202);

    // The check above can see what an accepted execution writes.
    const keys = await executionKeys(redis, stack.prefix);
    expect(keys).toContain(`${stack.prefix}:{${TEST_TENANT}/${SESSION}}:seq`);
    expect(keys).toContain(`${stack.prefix}:xid:{${first.executionId}}`);
  });
});
