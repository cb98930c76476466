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
  const problem: Problem = {
    type: tooLarge ? PROBLEM_TYPES.payloadTooLarge : PROBLEM_TYPES.validation,
    title: tooLarge ? 'Payload too large' : 'Invalid request body',
    status: tooLarge ? 413 : 400,
    detail: tooLarge ? 'request body exceeds the size limit' : `body is not valid JSON: ${e.message ?? 'parse error'}`,
  };
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}
