import { ProblemException } from '../problems/problem.exception';

/** The token of `Authorization: Bearer <token>`, or null for a missing or malformed header. */
export function bearerToken(authorization: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match ? match[1] : null;
}

/** 401 with the challenge RFC 6750 asks for. */
export function unauthorized(detail: string): ProblemException {
  return new ProblemException('unauthorized', 401, detail, {}, { 'WWW-Authenticate': 'Bearer' });
}
