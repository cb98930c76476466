import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Problem } from '@kernelfleet/contracts';
import { requestPath } from './routing';
import { ProblemException } from './problem.exception';

/** Which bodies are read, and how much of them. */
export interface BodyRules {
  /** The largest JSON body a request to `path` may send. */
  jsonLimit(path: string): number;
  /** Paths whose body is the route's own stream (session files): never read here. */
  streamed: RegExp;
  /** The one path that takes an HTML form (the admin login), and its limit. */
  form?: { path: string; limit: number };
}

function bodyInvalid(detail: string, message: string): ProblemException {
  return new ProblemException('validation', 400, `body: ${detail}`, { title: 'Invalid request body', errors: [{ field: 'body', message }] } satisfies Partial<Problem>);
}

const tooLarge = () => new ProblemException('payloadTooLarge', 413, 'request body exceeds the size limit');

function unsupported(detail: string): ProblemException {
  return new ProblemException('unsupportedMediaType', 415, `${detail}; send UTF-8 JSON as Content-Type: application/json`);
}

/** The `charset` parameter of a Content-Type, lower case, or undefined. */
function charsetOf(contentType: string | undefined): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')?.[1]?.toLowerCase();
}

/** The body's bytes, refused past `limit` (a Content-Length over it is refused unread). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length']) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => settle();
    const onClose = () => settle(new Error('the client went away before the body ended'));
    req.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose);
  });
}

/** Bodies that are not plain bytes (gzip and the like) are refused: the api reads identity only. */
function checkEncoding(req: IncomingMessage): void {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity') throw unsupported(`unsupported content encoding "${encoding}"`);
}

/**
 * A JSON body: any JSON value (the routes say what they expect), UTF-8 only, with bytes that are
 * not UTF-8 refused rather than decoded to U+FFFD (code that is not what the client sent). An
 * empty body reads as `{}`.
 */
async function parseJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const charset = charsetOf(req.headers['content-type']);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw unsupported(`unsupported charset "${charset.toUpperCase()}"`);
  checkEncoding(req);
  const bytes = await readBody(req, limit);
  if (bytes.length === 0) return {};
  if (!isUtf8(bytes)) throw bodyInvalid('not valid UTF-8; send the request as UTF-8 JSON', 'not valid UTF-8');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw bodyInvalid(`not valid JSON: ${(error as Error).message}`, 'not valid JSON');
  }
}

/** An HTML form's fields (`application/x-www-form-urlencoded`), identity-encoded. */
async function parseForm(req: IncomingMessage, limit: number): Promise<Record<string, string>> {
  checkEncoding(req);
  const bytes = await readBody(req, limit);
  return Object.fromEntries(new URLSearchParams(bytes.toString('utf8')));
}

/**
 * The api's body parsers, in place of Fastify's: JSON with a limit per route, the admin login's
 * form, and every other body left unread (the routes answer 415 for a type they do not take, and
 * session files stream theirs to the worker as it comes).
 */
export function registerBodyParsers(fastify: FastifyInstance, rules: BodyRules): void {
  fastify.removeAllContentTypeParsers();
  const unread = (_req: FastifyRequest, _payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void) => done(null, undefined);
  fastify.addContentTypeParser('*', unread);
  fastify.addContentTypeParser('application/json', (req, payload, done) => {
    const path = requestPath(req);
    if (rules.streamed.test(path)) return done(null, undefined);
    parseJson(payload, rules.jsonLimit(path)).then((body) => done(null, body), (error: Error) => done(error));
  });
  const form = rules.form;
  if (!form) return;
  fastify.addContentTypeParser('application/x-www-form-urlencoded', (req, payload, done) => {
    if (requestPath(req) !== form.path) return done(null, undefined);
    parseForm(payload, form.limit).then((body) => done(null, body), (error: Error) => done(error));
  });
}

/** Whether the request's body is declared as `mediaType` (its Content-Type, parameters aside). */
export function declaredAs(req: FastifyRequest, mediaType: string): boolean {
  const declared = req.headers['content-type'] ?? '';
  const end = declared.indexOf(';');
  return (end < 0 ? declared : declared.slice(0, end)).trim().toLowerCase() === mediaType;
}

/** The routes that take JSON refuse any other body with a 415. */
export function requireJson(req: FastifyRequest): void {
  if (!declaredAs(req, 'application/json')) {
    throw new ProblemException('unsupportedMediaType', 415, 'send the body as Content-Type: application/json');
  }
}
