/** `type` URIs of the RFC 9457 problem documents the api answers with (wire contract). */
export const PROBLEM_TYPES = {
  validation: 'https://kernelfleet.dev/problems/validation',
  unauthorized: 'https://kernelfleet.dev/problems/unauthorized',
  notFound: 'https://kernelfleet.dev/problems/not-found',
  conflict: 'https://kernelfleet.dev/problems/conflict',
  /** What the request names existed but has ended (a tool call answered too late). */
  gone: 'https://kernelfleet.dev/problems/gone',
  /** The request is well-formed but cannot be honoured (an Idempotency-Key reused with another request). */
  unprocessable: 'https://kernelfleet.dev/problems/unprocessable',
  payloadTooLarge: 'https://kernelfleet.dev/problems/payload-too-large',
  unsupportedMediaType: 'https://kernelfleet.dev/problems/unsupported-media-type',
  methodNotAllowed: 'https://kernelfleet.dev/problems/method-not-allowed',
  /** A tenant quota is full (429, with Retry-After); `quota` and `limit` name it. */
  quotaExceeded: 'https://kernelfleet.dev/problems/quota-exceeded',
  unavailable: 'https://kernelfleet.dev/problems/unavailable',
  internal: 'https://kernelfleet.dev/problems/internal',
} as const;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: { field: string; message: string }[];
  /** The tenant quota that refused the request (docs/quotas.md), and its limit. */
  quota?: string;
  limit?: number;
  /** A file operation's case (docs/files.md), e.g. `not_found`, `quota_exceeded`, `link`. */
  code?: string;
}
