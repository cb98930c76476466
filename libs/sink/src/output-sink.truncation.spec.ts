import { OutputSink, type OutputSinkOptions } from './output-sink';
import { formatElisionMarker } from './size-formatter';

const bytesOf = (text: string): number => Buffer.byteLength(text, 'utf8');
const newlinesIn = (text: string): number => text.split('\n').length - 1;

function finish(chunks: string[], options: OutputSinkOptions = {}) {
  const sink = new OutputSink(options);
  for (const chunk of chunks) sink.push(chunk);
  return sink.finish();
}

/** `count` numbered ASCII lines, e.g. `line 00042\n`. */
function numberedLines(count: number): string {
  return Array.from({ length: count }, (_, i) => `line ${String(i).padStart(5, '0')}\n`).join('');
}

describe('OutputSink column cap', () => {
  it('keeps a line of exactly 768 bytes untouched', () => {
    const line = 'x'.repeat(768);
    const summary = finish([`${line}\nnext`]);
    expect(summary.output).toBe(`${line}\nnext`);
    expect(summary.truncated).toBe(false);
  });

  it('cuts a 769-byte line to 765 bytes and an ellipsis, and keeps the next line intact', () => {
    const summary = finish([`${'x'.repeat(769)}\nnext line\n`]);
    expect(summary.output).toBe(`${'x'.repeat(765)}…\nnext line\n`);
    expect(bytesOf(summary.output.split('\n')[0])).toBe(768);
    expect(summary.truncated).toBe(true);
    expect(summary.totalBytes).toBe(769 + 11);
  });

  it('never cuts a multibyte character in half', () => {
    const euro = finish([`${'a'.repeat(764)}€${'b'.repeat(10)}`]).output;
    expect(euro).toBe(`${'a'.repeat(764)}…`);
    const emoji = finish([`${'a'.repeat(762)}😀${'b'.repeat(10)}`]).output;
    expect(emoji).toBe(`${'a'.repeat(762)}…`);
    expect(emoji).not.toContain('\ufffd');
  });

  it('keeps a character that straddles the cut when the line still fits', () => {
    const line = `${'a'.repeat(764)}€a`;
    expect(finish([`${line}\n`]).output).toBe(`${line}\n`);
  });

  it('caps a line spread over three chunks once, with a single ellipsis', () => {
    const summary = finish(['x'.repeat(500), 'y'.repeat(500), `${'z'.repeat(500)}\nafter`]);
    expect(summary.output).toBe(`${'x'.repeat(500)}${'y'.repeat(265)}…\nafter`);
    expect(summary.output.split('…')).toHaveLength(2);
  });

  it('decides on a line whose last bytes arrive in a later chunk', () => {
    expect(finish(['x'.repeat(766), 'xx\n']).output).toBe(`${'x'.repeat(768)}\n`);
    expect(finish(['x'.repeat(766), 'xxx']).output).toBe(`${'x'.repeat(765)}…`);
    expect(finish(['x'.repeat(767)]).output).toBe('x'.repeat(767));
  });

  it('honours a configured line cap', () => {
    expect(finish(['abcdefgh\nabcdefghi\n'], { lineBytes: 8 }).output).toBe('abcdefgh\nabcde…\n');
  });
});

describe('OutputSink head and tail', () => {
  it('keeps output within head + tail whole', () => {
    const text = numberedLines(30);
    const summary = finish([text], { headBytes: 100, tailBytes: text.length - 100 });
    expect(summary.output).toBe(text);
    expect(summary).toMatchObject({ truncated: false, overflowed: false });
  });

  it('keeps head and tail and marks the elided middle with its lines and size', () => {
    const text = numberedLines(100);
    const chunks = text.match(/[^]{1,37}/g) ?? [];
    const summary = finish(chunks, { headBytes: 95, tailBytes: 130 });
    const middle = text.slice(95, -130);
    expect(summary.output).toBe(
      text.slice(0, 95) + formatElisionMarker(newlinesIn(middle), middle.length) + text.slice(-130),
    );
    expect(summary).toMatchObject({ truncated: true, overflowed: true, totalLines: 101, totalBytes: text.length });
  });

  it('elides with the default 20 KB head and 50 KB tail', () => {
    const text = numberedLines(20000);
    const summary = finish(text.match(/[^]{1,4096}/g) ?? []);
    const middle = text.slice(20480, -51200);
    expect(summary.output.startsWith(text.slice(0, 20480) + '\n[… ')).toBe(true);
    expect(summary.output.endsWith(' …]\n' + text.slice(-51200))).toBe(true);
    expect(summary.output).toContain(`[… ${newlinesIn(middle)} lines elided (${(middle.length / 1024).toFixed(1)} KB) …]`);
    expect(summary.outputBytes).toBe(bytesOf(summary.output));
  });

  it('starts the tail and ends the head on character boundaries', () => {
    const text = `${'€'.repeat(20)}\n`.repeat(5);
    const summary = finish([text], { headBytes: 10, tailBytes: 20 });
    expect(summary.output).not.toContain('\ufffd');
    const [head, rest] = summary.output.split('\n[… ');
    const tail = rest.slice(rest.indexOf('…]\n') + 3);
    expect(head).toBe('€€€');
    expect(tail).toBe('€€€€€€\n');
    expect(summary.output).toContain(`[… 4 lines elided (${bytesOf(text) - 9 - 19} B) …]`);
  });

  it('with a zero head keeps only the tail, marker first', () => {
    const text = numberedLines(50);
    const summary = finish([text], { headBytes: 0, tailBytes: 33 });
    const middle = text.slice(0, -33);
    expect(summary.output).toBe(formatElisionMarker(newlinesIn(middle), middle.length).slice(1) + text.slice(-33));
    expect(summary.output.startsWith('[… ')).toBe(true);
  });

  it('applies the head and tail to column-capped lines', () => {
    const summary = finish([`${'x'.repeat(5000)}\n`.repeat(10)], { headBytes: 800, tailBytes: 800 });
    expect(summary.output.startsWith(`${'x'.repeat(765)}…\n${'x'.repeat(31)}\n[… `)).toBe(true);
    expect(summary.output.endsWith(`…\n${'x'.repeat(765)}…\n`)).toBe(true);
    expect(summary.totalBytes).toBe(50010);
  });
});
