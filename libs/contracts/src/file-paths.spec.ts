import { FILE_PATH_MAX_BYTES, checkListPrefix, parseFileFolder, parseFilePath } from './file-paths';

/** A path of exactly FILE_PATH_MAX_BYTES: five names of 204 bytes and four slashes. */
const LONGEST = Array(5).fill('x'.repeat(204)).join('/');

/** Hostile remainders of `/files/…`, each with what the refusal must say. */
const HOSTILE: [encoded: string, says: RegExp][] = [
  ['', /empty/],
  ['..', /"\." or "\.\."/],
  ['.', /"\." or "\.\."/],
  ['a/../b', /"\." or "\.\."/],
  ['../../etc/passwd', /"\." or "\.\."/],
  ['%2e%2e/x', /"\." or "\.\."/],
  ['%2E%2E%2Fetc', /"\." or "\.\."/],
  ['..%2f..%2fetc%2fpasswd', /"\." or "\.\."/],
  ['a/%2e/b', /"\." or "\.\."/],
  ['%252e%252e', /encoded twice \("%2e"/],
  ['%252e%252e%252fetc', /encoded twice/],
  ['a%2541', /encoded twice \("%41"/],
  ['/etc/passwd', /starts with \//],
  ['%2fetc%2fpasswd', /starts with \//],
  ['%2F', /starts with \//],
  ['a%5cb', /backslash/],
  ['a\\b', /backslash/],
  ['..\\..', /backslash/],
  ['..%5c..%5cwindows', /backslash/],
  ['a%00b', /control character/],
  ['a.txt%00.png', /control character/],
  ['a%0ab', /control character/],
  ['a%0d%0aSet-Cookie:x', /control character/],
  ['a%7fb', /control character/],
  ['a%09b', /control character/],
  ['%c0%ae%c0%ae', /not valid percent-encoded UTF-8/],
  ['%c0%af', /not valid percent-encoded UTF-8/],
  ['%e0%80%ae', /not valid percent-encoded UTF-8/],
  ['%ed%a0%80', /not valid percent-encoded UTF-8/], // a UTF-16 surrogate
  ['%ff', /not valid percent-encoded UTF-8/],
  ['%', /not valid percent-encoded UTF-8/],
  ['a%', /not valid percent-encoded UTF-8/],
  ['%zz', /not valid percent-encoded UTF-8/],
  ['%2', /not valid percent-encoded UTF-8/],
  ['a/./b', /"\." or "\.\."/],
  ['./a', /"\." or "\.\."/],
  ['a/.', /"\." or "\.\."/],
  ['a//b', /empty name/],
  ['a/', /empty name/],
  ['a%2f', /empty name/],
  ['/', /starts with \//],
  ['x'.repeat(FILE_PATH_MAX_BYTES + 1), /longer than 1024 bytes/],
  [`${'é'.repeat(513)}`, /longer than 1024 bytes/], // 1026 bytes in UTF-8, 513 characters
  [`${'%C3%A9'.repeat(513)}`, /longer than 1024 bytes/],
  [`d/${'n'.repeat(256)}`, /longer than 255 bytes/],
];

describe('parseFilePath', () => {
  it('refuses every hostile path of the catalogue, saying why', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
    for (const [encoded, says] of HOSTILE) {
      const result = parseFilePath(encoded);
      expect({ encoded, result }).toEqual({ encoded, result: { ok: false, message: expect.stringMatching(says) } });
    }
  });

  it('takes ordinary paths, decoded once', () => {
    const good: [encoded: string, path: string][] = [
      ['a.txt', 'a.txt'],
      ['dir/sub/file.bin', 'dir/sub/file.bin'],
      ['.hidden', '.hidden'],
      ['...', '...'],
      ['..a', '..a'],
      ['a..', 'a..'],
      ['a/.b/c..d', 'a/.b/c..d'],
      ['r%C3%A9sum%C3%A9.txt', 'résumé.txt'],
      ['my%20notes/draft%201.md', 'my notes/draft 1.md'],
      ['100%25.txt', '100%.txt'], // a % that is not an encoding is a character like any other
      ['%E2%9C%93%F0%9F%98%80', '✓😀'],
      ['dir%2Ffile', 'dir/file'], // %2F and / are the same separator
      [LONGEST, LONGEST],
      [`${'n'.repeat(255)}/${'m'.repeat(255)}`, `${'n'.repeat(255)}/${'m'.repeat(255)}`],
    ];
    for (const [encoded, path] of good) expect({ encoded, result: parseFilePath(encoded) }).toEqual({ encoded, result: { ok: true, path } });
  });
});

describe('parseFileFolder', () => {
  it("takes '' as the session's folder, and folders as parseFilePath takes paths", () => {
    expect(parseFileFolder('')).toEqual({ ok: true, path: '' });
    expect(parseFileFolder('data/raw%20files')).toEqual({ ok: true, path: 'data/raw files' });
  });

  it('refuses the catalogue but the empty path', () => {
    for (const [encoded] of HOSTILE.filter(([encoded]) => encoded !== '')) expect({ encoded, ok: parseFileFolder(encoded).ok }).toEqual({ encoded, ok: false });
  });
});

describe('checkListPrefix', () => {
  it('takes empty prefixes, a / at the end, and the start of a name (dots included)', () => {
    for (const prefix of ['', 'a', 'dir/', 'dir/sub/fi', '.', '..', 'dir/.', '.hid', 'résumé']) expect(checkListPrefix(prefix)).toEqual({ ok: true, path: prefix });
  });

  it('refuses what names no folder: absolute, empty, . or .. names before the last, backslashes, control characters', () => {
    const refused: [prefix: string, says: RegExp][] = [
      ['/etc', /starts with \//],
      ['a//', /empty name/],
      ['../', /"\." or "\.\."/],
      ['a/../b', /"\." or "\.\."/],
      ['./a', /"\." or "\.\."/],
      ['a\\', /backslash/],
      ['a\u0000', /control character/],
      ['%2e%2e', /encoded twice/],
      ['x'.repeat(FILE_PATH_MAX_BYTES + 1), /longer than 1024 bytes/],
    ];
    for (const [prefix, says] of refused) expect({ prefix, result: checkListPrefix(prefix) }).toEqual({ prefix, result: { ok: false, message: expect.stringMatching(says) } });
  });
});
