import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { PROBLEM_TYPES, type Problem } from '@kernelfleet/contracts';
import { isStoreUnavailable } from '@kernelfleet/store';
import { ProblemException } from './problem.exception';

/** Answers every error as application/problem+json (RFC 9457), never an HTML or bare 500. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemFilter.name);

  catch(error: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const problem = this.toProblem(error);
    if (res.headersSent) {
      res.end();
      return;
    }
    if (error instanceof ProblemException) res.set(error.headers);
    if (problem.status === 503) res.set('Retry-After', '1');
    res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  }

  toProblem(error: unknown): Problem {
    if (error instanceof ProblemException) return error.problem;
    if (error instanceof HttpException) {
      const status = error.getStatus();
      const kind = status === 404 ? 'notFound' : status === 401 ? 'unauthorized' : 'validation';
      return { type: PROBLEM_TYPES[kind], title: error.message, status, detail: error.message };
    }
    if (isStoreUnavailable(error)) {
      return { type: PROBLEM_TYPES.unavailable, title: 'Service unavailable', status: 503, detail: 'the queue store is unreachable; retry shortly' };
    }
    this.logger.error((error as Error)?.stack ?? String(error));
    return { type: PROBLEM_TYPES.internal, title: 'Internal error', status: 500, detail: 'unexpected error' };
  }
}
