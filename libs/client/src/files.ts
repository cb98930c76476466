import { seg, type HttpTransport } from './http.js';

/**
 * Writes an execution's artifact (its full output, once it overflowed the result) to `path`,
 * streamed: the artifact never sits in memory whole. Node only; the rest of the client runs in
 * a browser too.
 */
export async function downloadArtifact(transport: HttpTransport, executionId: string, path: string, signal?: AbortSignal): Promise<void> {
  const [{ createWriteStream }, { Readable }, { pipeline }] = await Promise.all([
    import('node:fs'),
    import('node:stream'),
    import('node:stream/promises'),
  ]);
  const res = await transport.request('GET', `/v1/executions/${seg(executionId)}/artifact`, { idempotent: true, signal });
  if (!res.body) throw new Error(`the artifact of ${executionId} came without a body`);
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(path), { signal });
}
