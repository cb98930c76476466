/**
 * A small tar (ustar) writer and reader for moving folders to and from a session in one request.
 * Only regular files and folders are written or read; names longer than the 100 bytes of a ustar
 * header, and sizes past its 8 GiB, go in a PAX extended header. Both sides stream: a file's
 * bytes pass through in the pieces they come in and are never gathered in memory. Runs in a
 * browser too (Uint8Array and web streams only).
 *
 * Layout of a header (512 bytes; numbers are octal text ending in NUL):
 *   0 name[100]  100 mode[8]  108 uid[8]  116 gid[8]  124 size[12]  136 mtime[12]
 *   148 checksum[8]  156 type[1]  157 linkname[100]  257 magic[6] "ustar\0"  263 version[2] "00"
 *   265 uname[32]  297 gname[32]  329 devmajor[8]  337 devminor[8]  345 prefix[155]
 * Each entry's data is padded to a multiple of 512 bytes; the archive ends with two zero blocks.
 */

const BLOCK = 512;
const NAME_BYTES = 100;
/** The largest size an 11-digit octal field holds (8 GiB - 1); larger ones need a PAX `size`. */
const MAX_OCTAL_SIZE = 0o77777777777;
/** A PAX header or a GNU long name larger than this is not a name: the archive is refused. */
const MAX_META_BYTES = 1 << 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A folder in an archive; `path` is relative, `/`-separated, without a trailing `/`. */
export interface TarFolder {
  type: 'folder';
  path: string;
  mode?: number;
  /** Modification time, epoch seconds. */
  mtime?: number;
}

/** A regular file in an archive: `body` yields exactly `size` bytes. */
export interface TarFile {
  type: 'file';
  path: string;
  size: number;
  mode?: number;
  /** Modification time, epoch seconds. */
  mtime?: number;
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

export type TarEntry = TarFolder | TarFile;

/** An archive that is malformed, or holds what is not extracted (a link, a device, a path leaving its folder). */
export class TarError extends Error {
  override readonly name = 'TarError';
}

/**
 * The path of an archive member as a safe relative path: `.` and empty segments dropped
 * (`./a//b/` is `a/b`), absolute paths and `..` refused with a TarError.
 */
export function memberPath(raw: string): string {
  if (raw.startsWith('/')) throw new TarError(`"${raw}" is an absolute path`);
  const segments = raw.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..')) throw new TarError(`"${raw}" goes up out of its folder (..)`);
  return segments.join('/');
}

/**
 * The entries as a tar archive, in pieces. A file whose body yields more or fewer bytes than
 * its `size` (it changed while being packed) makes the archive fail with a TarError.
 */
export async function* writeTar(entries: AsyncIterable<TarEntry> | Iterable<TarEntry>): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) {
    const path = memberPath(entry.path);
    if (path === '') throw new TarError(`"${entry.path}" names no member`);
    const name = entry.type === 'folder' ? `${path}/` : path;
    const size = entry.type === 'file' ? entry.size : 0;
    const mtime = Math.max(0, Math.floor(entry.mtime ?? Date.now() / 1000));
    const extended: string[] = [];
    if (encoder.encode(name).length > NAME_BYTES) extended.push(paxRecord('path', name));
    if (size > MAX_OCTAL_SIZE) extended.push(paxRecord('size', String(size)));
    if (extended.length > 0) {
      const records = encoder.encode(extended.join(''));
      yield header({ name: `PaxHeaders/${fitted(path.slice(path.lastIndexOf('/') + 1), NAME_BYTES - 11)}`, type: 'x', size: records.length, mode: 0o644, mtime });
      yield records;
      yield padding(records.length);
    }
    const mode = entry.mode ?? (entry.type === 'folder' ? 0o755 : 0o644);
    yield header({ name: fitted(name, NAME_BYTES), type: entry.type === 'file' ? '0' : '5', size: size > MAX_OCTAL_SIZE ? 0 : size, mode, mtime });
    if (entry.type === 'folder') continue;
    let sent = 0;
    for await (const piece of entry.body) {
      sent += piece.length;
      if (sent > size) throw new TarError(`${path}: more than its ${size} bytes (did it change while being packed?)`);
      yield piece;
    }
    if (sent < size) throw new TarError(`${path}: ${sent} bytes instead of ${size} (did it change while being packed?)`);
    yield padding(size);
  }
  yield new Uint8Array(2 * BLOCK);
}

/**
 * The entries of a tar archive, in order. Files and folders only: a link, a device or any other
 * kind of member is refused with a TarError, as are absolute paths and `..`. A file's `body`
 * must be read before asking for the next entry; what is left unread is skipped. ustar, PAX
 * (`path`, `size`) and GNU long names are understood: GNU tar's gnu, pax and ustar formats.
 */
export async function* readTar(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const chunks = 'getReader' in source ? chunksOf(source) : source[Symbol.asyncIterator]();
  const bytes = new ByteReader(chunks);
  try {
    let extended: Map<string, string> = new Map();
    let longName: string | undefined;
    for (;;) {
      const block = await bytes.block();
      if (block === null || block.every((byte) => byte === 0)) return;
      if (!checksumMatches(block)) throw new TarError('not a tar archive (a header’s checksum does not match)');
      const type = String.fromCharCode(block[156] || 0x30);
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        const length = field(block, 124, 12);
        if (length > MAX_META_BYTES) throw new TarError(`an extended header of ${length} bytes`);
        const data = await bytes.exactly(length);
        await bytes.skip(padding(length).length);
        // 'g' (global) holds nothing we use; 'K' names a link's target, and the link is refused anyway.
        if (type === 'x') extended = paxRecords(data);
        if (type === 'L') longName = cString(data);
        continue;
      }

      const rawPath = extended.get('path') ?? longName ?? ustarName(block);
      const size = extended.has('size') ? Number(extended.get('size')) : field(block, 124, 12);
      if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`"${rawPath}" has an unreadable size`);
      extended = new Map();
      longName = undefined;
      const path = memberPath(rawPath);
      const mode = field(block, 100, 8);
      const mtime = field(block, 136, 12);
      if (type === '5') {
        await bytes.skip(size + padding(size).length);
        if (path !== '') yield { type: 'folder', path, mode, mtime };
        continue;
      }
      if (type === '1' || type === '2') throw new TarError(`"${rawPath}" is a link: links are not extracted`);
      if (type !== '0') throw new TarError(`"${rawPath}" is of type "${type}": only files and folders are extracted`);
      if (path === '') throw new TarError(`"${rawPath}" names no file`);

      let left = size;
      const body = (async function* () {
        while (left > 0) {
          const piece = await bytes.next(left);
          left -= piece.length;
          yield piece;
        }
      })();
      yield { type: 'file', path, size, mode, mtime, body };
      await bytes.skip(left + padding(size).length);
    }
  } finally {
    await chunks.return?.();
  }
}

/** An async iterable of byte pieces as a web stream, read only as fast as it is consumed. */
export function streamOf(pieces: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = pieces[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await iterator.next();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Pieces of a byte stream; the stream is cancelled when the consumer stops early. */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** Bytes taken from a stream of pieces in the amounts the reader asks for. */
class ByteReader {
  private pending: Uint8Array = new Uint8Array(0);

  constructor(private readonly chunks: AsyncIterator<Uint8Array>) {}

  /** Between 1 and `max` bytes; a TarError when the stream ends first. */
  async next(max: number): Promise<Uint8Array> {
    while (this.pending.length === 0) {
      const { done, value } = await this.chunks.next();
      if (done) throw new TarError('the archive ends in the middle of a member');
      this.pending = value;
    }
    const piece = this.pending.subarray(0, max);
    this.pending = this.pending.subarray(piece.length);
    return piece;
  }

  async exactly(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    for (let got = 0; got < n; ) {
      const piece = await this.next(n - got);
      out.set(piece, got);
      got += piece.length;
    }
    return out;
  }

  /** The next header block, or null when the stream ends cleanly before it. */
  async block(): Promise<Uint8Array | null> {
    while (this.pending.length === 0) {
      const { done, value } = await this.chunks.next();
      if (done) return null;
      this.pending = value;
    }
    return this.exactly(BLOCK);
  }

  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) left -= (await this.next(left)).length;
  }
}

function header(h: { name: string; type: string; size: number; mode: number; mtime: number }): Uint8Array {
  const block = new Uint8Array(BLOCK);
  block.set(encoder.encode(h.name), 0);
  octal(block, 100, 8, h.mode & 0o7777);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, h.size);
  octal(block, 136, 12, h.mtime);
  block[156] = h.type.charCodeAt(0);
  block.set(encoder.encode('ustar\u000000'), 257);
  block.set(encoder.encode(`${checksum(block).toString(8).padStart(6, '0')}\u0000 `), 148);
  return block;
}

function octal(block: Uint8Array, offset: number, width: number, value: number): void {
  block.set(encoder.encode(`${value.toString(8).padStart(width - 1, '0')}\u0000`), offset);
}

/** The sum of the header's bytes, its checksum field counted as eight spaces. */
function checksum(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum;
}

function checksumMatches(block: Uint8Array): boolean {
  try {
    return field(block, 148, 8) === checksum(block);
  } catch {
    return false;
  }
}

/** A numeric field: octal text, or GNU's base-256 (high bit set) for values octal cannot hold. */
function field(block: Uint8Array, offset: number, width: number): number {
  if (block[offset] & 0x80) {
    let value = block[offset] & 0x7f;
    for (let i = 1; i < width; i++) value = value * 256 + block[offset + i];
    return value;
  }
  const digits = cString(block.subarray(offset, offset + width)).trim();
  if (!/^[0-7]*$/.test(digits)) throw new TarError(`"${digits}" is not an octal number`);
  return digits === '' ? 0 : parseInt(digits, 8);
}

/** The name of a ustar header, with its prefix (POSIX ustar only: GNU's magic "ustar  " uses that room otherwise). */
function ustarName(block: Uint8Array): string {
  const name = cString(block.subarray(0, NAME_BYTES));
  const posix = cString(block.subarray(257, 263)) === 'ustar';
  const prefix = posix ? cString(block.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** One PAX record, `"<length> <key>=<value>\n"`, where the length counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): string {
  const rest = encoder.encode(` ${key}=${value}\n`).length;
  let length = rest + 1;
  while (String(length).length + rest !== length) length = String(length).length + rest;
  return `${length} ${key}=${value}\n`;
}

function paxRecords(data: Uint8Array): Map<string, string> {
  const records = new Map<string, string>();
  for (let at = 0; at < data.length && data[at] !== 0; ) {
    const space = data.indexOf(0x20, at);
    const length = space < 0 ? NaN : Number(decoder.decode(data.subarray(at, space)));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > data.length) throw new TarError('a PAX header is malformed');
    const record = decoder.decode(data.subarray(space + 1, at + length - 1));
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}

/** Zero bytes that fill the last block of `size` bytes of data. */
function padding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The longest start of `text` that fits in `max` UTF-8 bytes, not cutting a character. */
function fitted(text: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const char of text) {
    bytes += encoder.encode(char).length;
    if (bytes > max) break;
    out += char;
  }
  return out;
}
