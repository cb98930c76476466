import type { NextFunction, Request, Response } from 'express';
import { PROBLEM_TYPES, type Problem } from '@kernelfleet/contracts';

/**
 * Express error handler placed right after the JSON body parser: its errors (malformed JSON,
 * body over the limit, bad charset) happen before Nest's filters can see them.
 */
export function bodyErrors(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  const e = error as { type?: string; status?: number; message?: string };
  if (!e || typeof e.status !== 'number') return next(error);
  const tooLarge = e.type === 'entity.too.large';
  // body-parser answers 415 for a charset or Content-Encoding it cannot decode: not a JSON error.
  const unsupported = e.status === 415;
  const problem: Problem = tooLarge
    ? { type: PROBLEM_TYPES.payloadTooLarge, title: 'Payload too large', status: 413, detail: 'request body exceeds the size limit' }
    : unsupported
      ? {
          type: PROBLEM_TYPES.unsupportedMediaType,
          title: 'Unsupported media type',
          status: 415,
          detail: `${e.message ?? 'unsupported body encoding'}; send UTF-8 JSON as Content-Type: application/json`,
        }
      : {
          type: PROBLEM_TYPES.validation,
          title: 'Invalid request body',
          status: 400,
          detail: `body is not valid JSON: ${e.message ?? 'parse error'}`,
        };
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}
