import { floorToCodePoint } from './byte-scanner';

const NEWLINE = 0x0a;
const ELLIPSIS = Buffer.from('…', 'utf8');
const EMPTY = Buffer.alloc(0);

/** Collects the output of one chunk as ranges of the source plus inserted pieces, copying only when needed. */
class ByteCollector {
  private readonly pieces: Buffer[] = [];
  private runStart = 0;
  private runEnd = 0;

  constructor(private readonly source: Buffer) {}

  take(start: number, end: number): void {
    if (start === end) return;
    if (start !== this.runEnd || this.runStart === this.runEnd) this.closeRun(start);
    this.runEnd = end;
  }

  add(piece: Buffer): void {
    if (!piece.length) return;
    this.closeRun(0);
    this.pieces.push(piece);
  }

  toBuffer(): Buffer {
    this.closeRun(0);
    const [only] = this.pieces;
    const whole = this.pieces.length === 1 && only.buffer === this.source.buffer && only.length === this.source.length;
    return whole && only.byteOffset === this.source.byteOffset ? this.source : Buffer.concat(this.pieces);
  }

  private closeRun(nextStart: number): void {
    if (this.runEnd > this.runStart) this.pieces.push(this.source.subarray(this.runStart, this.runEnd));
    this.runStart = this.runEnd = nextStart;
  }
}

/**
 * Caps every line of a UTF-8 stream at `maxLineBytes` (newline excluded). A longer line keeps its
 * first `maxLineBytes - 3` bytes, cut on a code point boundary, then `…`; the rest of it is dropped.
 * Lines may span chunks. The few bytes that decide whether a line is too long are held back
 * until the line ends or turns out too long.
 */
export class LineCapper {
  private readonly keepBytes: number;
  private column = 0;
  private held = EMPTY;
  private skipping = false;
  private capped = false;

  /** @throws RangeError unless `maxLineBytes` is an integer of at least 4. */
  constructor(private readonly maxLineBytes: number) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < ELLIPSIS.length + 1) {
      throw new RangeError(`line cap must be an integer >= ${ELLIPSIS.length + 1}, got ${maxLineBytes}`);
    }
    this.keepBytes = maxLineBytes - ELLIPSIS.length;
  }

  /** True once any line was cut. */
  get truncated(): boolean {
    return this.capped;
  }

  /** Bytes held back from the line in progress. */
  get heldBytes(): number {
    return this.held.length;
  }

  /** Caps a chunk of whole code points and returns what can be emitted now. */
  push(bytes: Buffer): Buffer {
    const out = new ByteCollector(bytes);
    for (let start = 0; ; ) {
      const newline = bytes.indexOf(NEWLINE, start);
      const end = newline === -1 ? bytes.length : newline;
      this.segment(bytes, start, end, newline !== -1, out);
      if (newline === -1) return out.toBuffer();
      start = newline + 1;
    }
  }

  /** Ends the stream: returns the held-back end of an unterminated last line. */
  flush(): Buffer {
    const rest = this.held;
    this.held = EMPTY;
    return rest;
  }

  private segment(bytes: Buffer, start: number, end: number, ended: boolean, out: ByteCollector): void {
    if (!this.skipping) {
      const length = end - start;
      const room = this.keepBytes - this.column;
      let safeEnd = room >= length ? end : room > 0 ? start + room : start;
      if (safeEnd > start && safeEnd < end) safeEnd = floorToCodePoint(bytes, safeEnd);
      out.take(start, safeEnd);
      this.column += length;
      if (this.column > this.maxLineBytes) {
        this.held = EMPTY;
        this.skipping = true;
        this.capped = true;
        out.add(ELLIPSIS);
      } else if (safeEnd < end) {
        this.held = Buffer.concat([this.held, bytes.subarray(safeEnd, end)]);
      }
    }
    if (ended) {
      out.add(this.held);
      this.held = EMPTY;
      out.take(end, end + 1);
      this.column = 0;
      this.skipping = false;
    }
  }
}
