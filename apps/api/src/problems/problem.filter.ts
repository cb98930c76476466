import { ArgumentsHost, Catch, HttpException, Logger, NotFoundException, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PROBLEM_TYPES, type Problem } from '@kernelfleet/contracts';
import { isStoreUnavailable } from '@kernelfleet/store';
import { allowedMethods, noRoute, requestPath } from './routing';
import { invalid, ProblemException } from './problem.exception';

/** Answers every error as application/problem+json (RFC 9457), never an HTML or bare 500. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemFilter.name);

  catch(thrown: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const res = http.getResponse<FastifyReply>();
    const error = fromRouter(thrown, http.getRequest<FastifyRequest>()) ?? thrown;
    const problem = this.toProblem(error);
    if (res.sent || res.raw.headersSent) {
      res.raw.end();
      return;
    }
    if (error instanceof ProblemException) res.headers(error.headers);
    if (problem.status === 503) res.header('Retry-After', '1');
    sendProblem(res, problem);
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

/** Writes `problem` as the answer: application/problem+json. */
export function sendProblem(res: FastifyReply, problem: Problem): void {
  res.status(problem.status).type('application/problem+json; charset=utf-8').send(JSON.stringify(problem));
}

/**
 * The router's own 4xx, as a problem naming what was wrong: no route with this method and path
 * (405 with `Allow` when other methods serve the path, else 404). A path segment that is not
 * valid percent-encoding is refused before routing (`frameworkErrors`).
 */
function fromRouter(error: unknown, req: FastifyRequest): ProblemException | undefined {
  if (error instanceof ProblemException || !(error instanceof HttpException)) return undefined;
  // Nest throws a plain NotFoundException only when no route has this method and path.
  if (error instanceof NotFoundException) {
    const allowed = allowedMethods(req);
    if (allowed.length === 0) return noRoute(req);
    return new ProblemException(
      'methodNotAllowed',
      405,
      `method ${req.method} is not allowed on ${requestPath(req)}; allowed: ${allowed.join(', ')}`,
      {},
      { Allow: allowed.join(', ') },
    );
  }
  return undefined;
}

/**
 * Fastify's `frameworkErrors`, refused before any route runs: chiefly a path it cannot decode (a
 * segment that is not valid percent-encoded UTF-8).
 */
export function frameworkErrors(error: Error & { code?: string }, req: FastifyRequest, res: FastifyReply): void {
  const message = error.code === 'FST_ERR_BAD_URL' ? `${requestPath(req)}: not valid percent-encoded UTF-8` : error.message;
  sendProblem(res, invalid([{ field: 'path', message }]).problem);
}
