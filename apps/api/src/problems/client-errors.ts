import type { Duplex } from 'node:stream';
import { PROBLEM_TYPES, type Problem } from '@kernelfleet/contracts';

interface ParserError extends Error {
  code?: string;
  reason?: string;
  rawPacket?: Buffer;
  bytesParsed?: number;
}

/**
 * The header line Node's HTTP parser stopped in (e.g. a control character in a header value),
 * so the problem can name the header; undefined when it stopped in the request line.
 */
function headerAt(error: ParserError): string | undefined {
  if (!error.rawPacket || error.bytesParsed === undefined) return undefined;
  const head = error.rawPacket.subarray(0, error.bytesParsed).toString('latin1');
  const lineStart = head.lastIndexOf('\r\n');
  if (lineStart < 0) return undefined;
  return /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):/.exec(head.slice(lineStart + 2))?.[1];
}

function problemFor(error: ParserError): Problem | undefined {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return { type: PROBLEM_TYPES.validation, title: 'Request headers too large', status: 431, detail: 'the request headers exceed the size limit' };
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { type: PROBLEM_TYPES.validation, title: 'Request timeout', status: 408, detail: 'the request did not arrive in time' };
  }
  if (!error.code?.startsWith('HPE_')) return undefined;
  const header = headerAt(error);
  const reason = error.reason ?? error.message;
  return {
    type: PROBLEM_TYPES.validation,
    title: 'Malformed HTTP request',
    status: 400,
    detail: header
      ? `${header}: ${reason} (control characters are not allowed in header values)`
      : `the request is not valid HTTP/1.1: ${reason}`,
    ...(header ? { errors: [{ field: header, message: reason }] } : {}),
  };
}

/**
 * Requests Node's HTTP parser refuses before any route sees them (a control character in a
 * header, a malformed request line, headers over the limit) answer problem+json too, instead of
 * a bare `400 Bad Request` (Fastify's `clientErrorHandler`). The connection is closed afterwards,
 * as Node does.
 */
export function answerClientError(thrown: Error, socket: Duplex): void {
  const error = thrown as ParserError;
  // A response already under way on this connection (keep-alive) cannot take another one.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  const problem = problemFor(error);
  if (!problem || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${problem.status} ${problem.title}\r\n` +
      'Content-Type: application/problem+json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
