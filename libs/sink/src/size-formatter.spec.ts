import { formatByteSize, formatElisionMarker } from './size-formatter';

describe('formatByteSize', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KB'],
    [Math.round(38.4 * 1024), '38.4 KB'],
    [Math.round(1.2 * 1024 * 1024), '1.2 MB'],
    [1024 * 1024 - 1, '1.0 MB'],
    [3 * 1024 ** 3, '3.0 GB'],
    [2048 * 1024 ** 3, '2048.0 GB'],
  ])('formats %d bytes as %s', (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });

  it('rejects a negative count', () => {
    expect(() => formatByteSize(-1)).toThrow(RangeError);
  });
});

describe('formatElisionMarker', () => {
  it('names the elided lines and size on a line of its own', () => {
    expect(formatElisionMarker(1200, 39322)).toBe('\n[… 1200 lines elided (38.4 KB) …]\n');
  });
});
