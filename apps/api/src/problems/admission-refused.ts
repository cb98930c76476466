import type { Admission } from '@kernelfleet/store';
import { ProblemException } from './problem.exception';

/**
 * The answer to a refused admission: 429 with Retry-After for a full quota; a static limit
 * (code size, timeout), which waiting cannot fix, answers as the global limit does (413, 400).
 * `request`: what was asked, to name in the answer.
 */
export function admissionRefused(
  admission: Extract<Admission, { kind: 'refused' }>,
  sessionId: string,
  request: { codeBytes: number; timeoutField: 'timeoutMs' | 'deadlineAt' },
): ProblemException {
  const { quota, limit, retryAfterSeconds } = admission;
  const named = { quota, limit };
  switch (quota) {
    case 'maxCodeBytes':
      return new ProblemException(
        'payloadTooLarge',
        413,
        `code is ${request.codeBytes} bytes; this tenant's limit (maxCodeBytes) is ${limit}`,
        named,
      );
    case 'maxTimeoutMs': {
      const field = request.timeoutField;
      const message = `must be at most ${limit} ms from now (this tenant's maxTimeoutMs)`;
      return new ProblemException('validation', 400, `${field}: ${message}`, { ...named, errors: [{ field, message }] });
    }
    default: {
      const detail = {
        liveSessions: `this tenant has ${limit} live sessions (sessions with pending executions), its liveSessions limit; a new session can start once one of them has nothing pending`,
        pendingPerTenant: `this tenant has ${limit} pending executions, its pendingPerTenant limit`,
        pendingPerSession: `session ${sessionId} has ${limit} pending executions, its pendingPerSession limit`,
        submitsPerSecond: `this tenant submits faster than its submitsPerSecond limit (${limit} per second)`,
        submitBurst: `this tenant submits faster than its submitsPerSecond limit`,
      }[quota];
      return new ProblemException('quotaExceeded', 429, detail, named, { 'Retry-After': String(Math.max(1, retryAfterSeconds)) });
    }
  }
}
