import { ChunkSanitizer, sanitizeText } from './chunk-sanitizer';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('sanitizeText', () => {
  it('strips colour codes and carriage returns', () => {
    expect(sanitizeText('\x1b[31mred\r\n')).toBe('red\n');
  });

  it('strips CSI, OSC and two-character escape sequences', () => {
    expect(sanitizeText('a\x1b[2Kb\x1b[1;32mc\x1b[0m')).toBe('abc');
    expect(sanitizeText('\x1b]0;title\x07x\x1b]8;;http://e.x\x1b\\link\x1b]8;;\x1b\\')).toBe('xlink');
    expect(sanitizeText('\x1b7saved\x1b8\x1bMup\x1b(Bcharset\x1b=')).toBe('savedupcharset');
  });

  it('drops a lone carriage return instead of turning it into a newline', () => {
    expect(sanitizeText('10%\r20%\r100%\n')).toBe('10%20%100%\n');
  });

  it('drops control characters but keeps tab and newline', () => {
    expect(sanitizeText('a\x00b\x07c\x08d\te\x0bf\x0cg\x1fh\n')).toBe('abcd\tefgh\n');
  });

  it('drops DEL and C1 controls', () => {
    expect(sanitizeText('a\x7fb\x80c\x85d\x9be\x9fé')).toBe('abcdeé');
  });

  it('replaces lone surrogates with U+FFFD and keeps valid pairs', () => {
    expect(sanitizeText('a\ud800b\udc00c')).toBe('a\ufffdb\ufffdc');
    expect(sanitizeText('\ud83d\ude00\ud83d')).toBe('\ud83d\ude00\ufffd');
  });

  it('drops an unterminated escape sequence at the end', () => {
    expect(sanitizeText('done\x1b]0;title')).toBe('done');
    expect(sanitizeText('done\x1b[')).toBe('done');
  });
});

describe('ChunkSanitizer', () => {
  it('decodes a UTF-8 character split across two byte chunks', () => {
    const sanitizer = new ChunkSanitizer();
    const euro = utf8('x€y');
    expect(sanitizer.push(euro.subarray(0, 2))).toBe('x');
    expect(sanitizer.push(euro.subarray(2))).toBe('€y');
    expect(sanitizer.flush()).toBe('');
  });

  it('turns a truncated UTF-8 sequence into U+FFFD at the end or before a string chunk', () => {
    const atEnd = new ChunkSanitizer();
    atEnd.push(utf8('€').subarray(0, 2));
    expect(atEnd.flush()).toBe('\ufffd');

    const beforeString = new ChunkSanitizer();
    beforeString.push(utf8('€').subarray(0, 1));
    expect(beforeString.push('ok')).toBe('\ufffdok');
  });

  it('replaces invalid UTF-8 bytes with U+FFFD', () => {
    expect(new ChunkSanitizer().push(new Uint8Array([0x61, 0xff, 0x62]))).toBe('a\ufffdb');
  });

  it('strips an escape sequence split across chunks', () => {
    const sanitizer = new ChunkSanitizer();
    expect(sanitizer.push('plain\x1b[3')).toBe('plain');
    expect(sanitizer.push('1mred\x1b]0;ti')).toBe('red');
    expect(sanitizer.push('tle\x07!')).toBe('!');
  });

  it('strips escape sequences and controls from byte chunks too', () => {
    expect(new ChunkSanitizer().push(utf8('\x1b[1mbold\x1b[0m\r\n'))).toBe('bold\n');
  });

  it('gives up holding an unterminated escape sequence that grows too long', () => {
    const sanitizer = new ChunkSanitizer();
    expect(sanitizer.push('\x1b]' + 'x'.repeat(5000))).toBe(']' + 'x'.repeat(5000));
    expect(sanitizer.pendingLength).toBe(0);
  });
});
