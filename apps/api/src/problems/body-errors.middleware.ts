import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { PROBLEM_TYPES, type Problem } from '@kernelfleet/contracts';

const MALFORMED_UTF8 = 'entity.malformed.utf8';

/**
 * `verify` hook of the JSON body parser: a UTF-8 body holding bytes that are not UTF-8 is refused
 * instead of being decoded with U+FFFD in their place (code that is not what the client sent).
 */
export function rejectMalformedUtf8(_req: IncomingMessage, _res: unknown, body: Buffer, encoding: string): void {
  if (encoding === 'utf-8' && !isUtf8(body)) {
    throw Object.assign(new Error('body is not valid UTF-8'), { type: MALFORMED_UTF8 });
  }
}

function bodyProblem(e: { type?: string; status: number; message?: string }): Problem {
  const body = (status: number, detail: string, message: string): Problem => ({
    type: PROBLEM_TYPES.validation,
    title: 'Invalid request body',
    status,
    detail: `body: ${detail}`,
    errors: [{ field: 'body', message }],
  });
  if (e.type === 'entity.too.large') {
    return { type: PROBLEM_TYPES.payloadTooLarge, title: 'Payload too large', status: 413, detail: 'request body exceeds the size limit' };
  }
  // body-parser answers 415 for a charset or Content-Encoding it cannot decode: not a JSON error.
  if (e.status === 415) {
    return {
      type: PROBLEM_TYPES.unsupportedMediaType,
      title: 'Unsupported media type',
      status: 415,
      detail: `${e.message ?? 'unsupported body encoding'}; send UTF-8 JSON as Content-Type: application/json`,
    };
  }
  if (e.type === MALFORMED_UTF8) return body(400, 'not valid UTF-8; send the request as UTF-8 JSON', 'not valid UTF-8');
  if (e.type === 'entity.parse.failed') return body(400, `not valid JSON: ${e.message ?? 'parse error'}`, 'not valid JSON');
  const status = e.status >= 400 && e.status < 500 ? e.status : 400;
  return body(status, e.message ?? 'could not be read', e.message ?? 'could not be read');
}

/**
 * Express error handler placed right after the JSON body parser: its errors (malformed JSON or
 * UTF-8, body over the limit, bad charset) happen before Nest's filters can see them.
 */
export function bodyErrors(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  const e = error as { type?: string; status: number; message?: string } | undefined;
  if (!e || typeof e.status !== 'number') return next(error);
  const problem = bodyProblem(e);
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}
