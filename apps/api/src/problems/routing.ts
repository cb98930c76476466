import type { FastifyRequest } from 'fastify';
import { ProblemException } from './problem.exception';

const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'] as const;

/**
 * The methods the api serves at the request's path, asked of the app's own router, so a known
 * path asked with another method answers 405 with `Allow` instead of 404. Empty when no route has
 * this path. HEAD comes with GET (Fastify serves it).
 */
export function allowedMethods(req: FastifyRequest): string[] {
  const url = requestPath(req);
  return METHODS.filter((method) => {
    try {
      return req.server.findRoute({ method, url }) !== null;
    } catch {
      return false; // a path segment that is not valid percent-encoding matches no route
    }
  });
}

/** The request's path, as sent (percent-encoded), without the query. */
export function requestPath(req: FastifyRequest): string {
  return req.url.split('?', 1)[0];
}

/** The api's answer to a route it does not know (also given by routes that are switched off). */
export function noRoute(req: FastifyRequest): ProblemException {
  return new ProblemException('notFound', 404, `no route ${req.method} ${requestPath(req)}`);
}
