import { request } from 'node:http';
import type { Readable } from 'node:stream';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json?: any;
}

/**
 * An HTTP request whose path goes out exactly as written: fetch and URL would resolve `..` and
 * `%2e%2e` segments before sending, and the traversal tests need the server to see them.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  opts: { key: string; body?: Buffer | string | Readable; headers?: Record<string, string> },
): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, method, path, headers: { authorization: `Bearer ${opts.key}`, ...opts.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const type = String(res.headers['content-type'] ?? '');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: type.includes('json') && body.length ? JSON.parse(body.toString()) : undefined });
        });
      },
    );
    req.on('error', reject);
    const body = opts.body;
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/** `/v1/sessions/{id}/files/{path}` with each segment of `path` percent-encoded. */
export function filePath(sessionId: string, path: string, query = ''): string {
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return `/v1/sessions/${sessionId}/files/${encoded}${query ? `?${query}` : ''}`;
}
