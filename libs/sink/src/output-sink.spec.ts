import { OutputSink } from './output-sink';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

function run(chunks: Array<string | Uint8Array>, notice?: string) {
  const sink = new OutputSink();
  const pushed = chunks.map((chunk) => sink.push(chunk));
  return { pushed, summary: sink.finish({ notice }) };
}

describe('OutputSink', () => {
  it('returns sanitised text from push and keeps it in the output', () => {
    const { pushed, summary } = run(['\x1b[31mred\r\n', 'a\x00b\ud800\n']);
    expect(pushed).toEqual(['red\n', 'ab\ufffd\n']);
    expect(summary.output).toBe('red\nab\ufffd\n');
    expect(summary.truncated).toBe(false);
    expect(summary.overflowed).toBe(false);
  });

  it('decodes byte chunks with a character split between them', () => {
    const bytes = utf8('naïve €\n');
    const { summary } = run([bytes.subarray(0, 3), bytes.subarray(3, 7), bytes.subarray(7)]);
    expect(summary.output).toBe('naïve €\n');
  });

  it('counts lines across chunk boundaries', () => {
    expect(run(['a\n', 'b\n\n', 'c']).summary.totalLines).toBe(4);
    expect(run(['a', '\n', '', 'b']).summary.totalLines).toBe(2);
  });

  it('counts newlines + 1 once anything was printed, 0 for nothing', () => {
    expect(run(['a\n']).summary.totalLines).toBe(2);
    expect(run(['x']).summary.totalLines).toBe(1);
    expect(run([]).summary).toMatchObject({ output: '', totalLines: 0, totalBytes: 0, outputLines: 0, outputBytes: 0 });
    expect(run(['\x1b[0m\r']).summary.totalLines).toBe(0);
  });

  it('counts UTF-8 bytes of the sanitised text', () => {
    const { summary } = run(['\x1b[1m€\x1b[0m', 'é\r\n']);
    expect(summary.totalBytes).toBe(3 + 2 + 1);
    expect(summary.outputBytes).toBe(6);
    expect(summary.outputLines).toBe(2);
  });

  it('puts the notice on the first line without counting it in the totals', () => {
    const { summary } = run(['out\n', 'put'], 'timed out after 5s');
    expect(summary.output).toBe('[timed out after 5s]\nout\nput');
    expect(summary.output.split('\n')[0]).toBe('[timed out after 5s]');
    expect(summary).toMatchObject({ totalLines: 2, totalBytes: 7, outputLines: 3, outputBytes: 28 });
  });

  it('shows the notice even when nothing was printed', () => {
    expect(run([], 'killed').summary).toMatchObject({ output: '[killed]\n', totalLines: 0, outputLines: 2 });
  });

  it('refuses chunks after finish, and a second finish', () => {
    const sink = new OutputSink();
    sink.push('x');
    sink.finish();
    expect(() => sink.push('y')).toThrow(/finished/);
    expect(() => sink.finish()).toThrow(/finished/);
  });

  it('rejects invalid limits', () => {
    expect(() => new OutputSink({ headBytes: -1 })).toThrow(RangeError);
    expect(() => new OutputSink({ tailBytes: 1.5 })).toThrow(RangeError);
    expect(() => new OutputSink({ lineBytes: 3 })).toThrow(RangeError);
  });
});
