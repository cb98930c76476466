import { ArgumentsHost, Catch, HttpException, Logger, NotFoundException, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { PROBLEM_TYPES, type Problem } from '@kernelfleet/contracts';
import { isStoreUnavailable } from '@kernelfleet/store';
import { allowedMethods } from './allowed-methods';
import { invalid, ProblemException } from './problem.exception';

/** Answers every error as application/problem+json (RFC 9457), never an HTML or bare 500. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemFilter.name);

  catch(thrown: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const res = http.getResponse<Response>();
    const error = fromRouter(thrown, http.getRequest<Request>()) ?? thrown;
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

/**
 * The router's own 4xx, as problems naming what was wrong: no route with this method and path
 * (405 with `Allow` when other methods serve the path, else 404), or a path segment that is not
 * valid percent-encoding (Nest maps Express's URIError to a BadRequestException).
 */
function fromRouter(error: unknown, req: Request): ProblemException | undefined {
  if (error instanceof ProblemException || !(error instanceof HttpException)) return undefined;
  // Nest throws a plain NotFoundException only when no route has this method and path.
  if (error instanceof NotFoundException) {
    const allowed = allowedMethods(req);
    if (allowed.length === 0) return new ProblemException('notFound', 404, `no route ${req.method} ${req.path}`);
    return new ProblemException(
      'methodNotAllowed',
      405,
      `method ${req.method} is not allowed on ${req.path}; allowed: ${allowed.join(', ')}`,
      {},
      { Allow: allowed.join(', ') },
    );
  }
  if (/^Failed to decode param/.test(error.message)) {
    return invalid([{ field: 'path', message: `${error.message}: not valid percent-encoded UTF-8` }]);
  }
  return undefined;
}
