import { OutputSink, type OutputSinkOptions, type SinkSummary } from './output-sink';

const ATOMS = ['a', 'bc', 'é', '€', '😀', '\n', '\n', '\x1b[31m', '\x1b]0;t\x07', '\r', '\t', '\x00', 'x'.repeat(30)];

/** Small deterministic generator, so a failure reproduces. */
function randomSource(seed: number): (below: number) => number {
  let state = seed;
  return (below) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % below;
  };
}

function collect(chunks: Array<string | Uint8Array>, options: OutputSinkOptions) {
  const artifact: string[] = [];
  const sink = new OutputSink({ ...options, onArtifact: (text) => artifact.push(text) });
  const live = chunks.map((chunk) => sink.push(chunk)).join('');
  return { live, artifact: artifact.join(''), summary: sink.finish() };
}

describe('OutputSink chunking', () => {
  it('gives the same result however the stream is cut into byte chunks', () => {
    const random = randomSource(42);
    for (let run = 0; run < 300; run++) {
      const text = Array.from({ length: random(400) }, () => ATOMS[random(ATOMS.length)]).join('');
      const options = { headBytes: random(60), tailBytes: random(80), lineBytes: 4 + random(40) };
      const bytes = Buffer.from(text, 'utf8');
      const cuts: Uint8Array[] = [];
      for (let at = 0, size = 1 + random(50); at < bytes.length; at += size, size = 1 + random(50)) {
        cuts.push(bytes.subarray(at, at + size));
      }

      const whole = collect([text], options);
      const chunked = collect(cuts, options);
      const expected: SinkSummary = whole.summary;
      expect({ run, ...chunked.summary }).toEqual({ run, ...expected });
      expect(chunked.live).toBe(whole.live);
      expect(chunked.artifact).toBe(expected.overflowed ? whole.live : '');
    }
  });
});
