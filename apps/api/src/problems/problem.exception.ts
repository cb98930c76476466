import { HttpException } from '@nestjs/common';
import type { z } from 'zod';
import { PROBLEM_TYPES, type Problem } from '@kernelfleet/contracts';

type ProblemKind = keyof typeof PROBLEM_TYPES;

const TITLES: Record<ProblemKind, string> = {
  validation: 'Invalid request',
  unauthorized: 'Unauthorized',
  notFound: 'Not found',
  conflict: 'Conflict',
  gone: 'Gone',
  unprocessable: 'Unprocessable request',
  payloadTooLarge: 'Payload too large',
  unsupportedMediaType: 'Unsupported media type',
  methodNotAllowed: 'Method not allowed',
  quotaExceeded: 'Quota exceeded',
  unavailable: 'Service unavailable',
  internal: 'Internal error',
};

/** An RFC 9457 problem the api answers with; the filter writes it as application/problem+json. */
export class ProblemException extends HttpException {
  constructor(
    kind: ProblemKind,
    status: number,
    detail: string,
    extra: Partial<Problem> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super({ type: PROBLEM_TYPES[kind], title: TITLES[kind], status, detail, ...extra } satisfies Problem, status);
  }

  get problem(): Problem {
    return this.getResponse() as Problem;
  }
}

export const notFound = (what: string) => new ProblemException('notFound', 404, `${what} not found`);

export const invalid = (errors: { field: string; message: string }[]) =>
  new ProblemException(
    'validation',
    400,
    errors.map((e) => `${e.field}: ${e.message}`).join('; '),
    { errors },
  );

/** A 400 naming each field a zod schema refused; an unknown field is named itself. */
export const invalidBody = (issues: readonly z.core.$ZodIssue[]) =>
  invalid(
    issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ field: [...issue.path, key].join('.'), message: 'is not a known field' }))
        : [{ field: issue.path.join('.') || 'body', message: issue.message }],
    ),
  );
