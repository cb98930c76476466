import { DEFAULT_SINK_LIMITS, OutputSink, type OutputSinkOptions } from './output-sink';

const { headBytes, tailBytes } = DEFAULT_SINK_LIMITS;
const WINDOW = headBytes + tailBytes;

function recordingSink(options: OutputSinkOptions = {}) {
  const artifact: string[] = [];
  const sink = new OutputSink({ ...options, onArtifact: (text) => artifact.push(text) });
  return { sink, artifact };
}

/** Clean lines of at least `minBytes`, with accents, euro signs and the odd over-long line. */
function cleanText(minBytes: number): string {
  const lines: string[] = [];
  for (let i = 0, bytes = 0; bytes < minBytes; i++) {
    const line = i % 200 === 7 ? `long ${i} ${'€é'.repeat(400)}` : `row ${i}: café €${i * 3}`;
    lines.push(line);
    bytes += Buffer.byteLength(line) + 1;
  }
  return lines.map((line) => `${line}\n`).join('');
}

/** The same text as the kernel might send it: coloured, CRLF, in byte and string chunks cut anywhere. */
function dirtyChunks(clean: string, chunkBytes: number): Array<string | Uint8Array> {
  const dirty = clean.replace(/^(.*)\n/gm, '\x1b[32m$1\x1b[0m\r\n');
  const bytes = Buffer.from(dirty, 'utf8');
  const chunks: Array<string | Uint8Array> = [];
  for (let at = 0; at < bytes.length; at += chunkBytes) chunks.push(bytes.subarray(at, at + chunkBytes));
  return chunks;
}

describe('OutputSink artifact', () => {
  it('hands over the full sanitised stream, head included, byte for byte', () => {
    const clean = cleanText(1.5 * tailBytes + headBytes);
    const { sink, artifact } = recordingSink();
    const live = dirtyChunks(clean, 999).map((chunk) => sink.push(chunk));
    const summary = sink.finish();

    expect(live.join('')).toBe(clean);
    expect(artifact.length).toBeGreaterThan(1);
    expect(artifact[0].startsWith(clean.slice(0, headBytes))).toBe(true);
    expect(artifact.join('')).toBe(clean);
    expect(summary).toMatchObject({ overflowed: true, truncated: true, totalBytes: Buffer.byteLength(clean) });
    expect(summary.output).toContain('lines elided');
  });

  it('writes nothing to the artifact when the output never overflows', () => {
    const clean = cleanText(WINDOW - 2000);
    const { sink, artifact } = recordingSink({ lineBytes: 4096 });
    for (const chunk of dirtyChunks(clean, 4096)) sink.push(chunk);
    const summary = sink.finish();

    expect(artifact).toEqual([]);
    expect(summary).toMatchObject({ output: clean, overflowed: false, truncated: false });
  });

  it('overflows on one giant line even though its capped form is tiny', () => {
    const line = 'x'.repeat(4 * WINDOW);
    const { sink, artifact } = recordingSink();
    for (let at = 0; at < line.length; at += 10000) sink.push(line.slice(at, at + 10000));
    const summary = sink.finish();

    expect(artifact.join('')).toBe(line);
    expect(summary).toMatchObject({ output: `${'x'.repeat(765)}…`, overflowed: true, truncated: true });
  });
});

describe('OutputSink memory', () => {
  const CHUNK = 64 * 1024;
  const TOTAL = 200 * 1024 * 1024;

  function pushAll(chunk: string): { maxRetained: number; artifactBytes: number } {
    let artifactBytes = 0;
    let maxRetained = 0;
    const sink = new OutputSink({ onArtifact: (text) => (artifactBytes += text.length) });
    for (let pushed = 0; pushed < TOTAL; pushed += chunk.length) {
      sink.push(chunk);
      maxRetained = Math.max(maxRetained, sink.retainedBytes);
    }
    expect(sink.finish().totalBytes).toBe(TOTAL);
    return { maxRetained, artifactBytes };
  }

  it('stays bounded while 200 MB of short lines go through', () => {
    const { maxRetained, artifactBytes } = pushAll(`${'y'.repeat(63)}\n`.repeat(CHUNK / 64));
    expect(maxRetained).toBeLessThanOrEqual(4 * WINDOW);
    expect(artifactBytes).toBe(TOTAL);
  });

  it('stays bounded while a 200 MB line goes through', () => {
    const { maxRetained, artifactBytes } = pushAll('z'.repeat(CHUNK));
    expect(maxRetained).toBeLessThanOrEqual(4 * WINDOW);
    expect(artifactBytes).toBe(TOTAL);
  });
});
