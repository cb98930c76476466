import { ceilToCodePoint, countNewlines, floorToCodePoint } from './byte-scanner';
import { formatElisionMarker } from './size-formatter';

/** Pieces smaller than this are copied into shared blocks, so many tiny chunks stay few buffers. */
const BLOCK_BYTES = 4096;

const EMPTY = Buffer.alloc(0);

/** `view` itself, or a copy when it would keep a much larger buffer alive. */
function compact(view: Buffer): Buffer {
  return view.buffer.byteLength > 2 * view.length + 2 * BLOCK_BYTES ? Buffer.from(view) : view;
}

/** A list of byte pieces that packs small ones together and drops from the front cheaply. */
class PieceQueue {
  private pieces: Buffer[] = [];
  private first = 0;
  private block = EMPTY;
  private blockFill = 0;
  bytes = 0;

  append(piece: Buffer): void {
    if (!piece.length) return;
    this.bytes += piece.length;
    if (piece.length >= BLOCK_BYTES) {
      this.pieces.push(piece);
      return;
    }
    const last = this.pieces.length > this.first ? this.pieces[this.pieces.length - 1] : undefined;
    const open = last !== undefined && last.buffer === this.block.buffer && last.byteOffset + last.length === this.blockFill;
    if (open && this.blockFill + piece.length <= BLOCK_BYTES) {
      piece.copy(this.block, this.blockFill);
      this.blockFill += piece.length;
      this.pieces[this.pieces.length - 1] = this.block.subarray(last.byteOffset, this.blockFill);
      return;
    }
    this.block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
    this.blockFill = piece.copy(this.block, 0);
    this.pieces.push(this.block.subarray(0, this.blockFill));
  }

  /** Removes `count` bytes (rounded up to a code point boundary) from the front and returns them. */
  dropFront(count: number): Buffer[] {
    const dropped: Buffer[] = [];
    let left = count;
    while (left > 0 && this.first < this.pieces.length) {
      const piece = this.pieces[this.first];
      const cut = piece.length <= left ? piece.length : ceilToCodePoint(piece, left);
      dropped.push(piece.subarray(0, cut));
      if (cut === piece.length) this.pieces[this.first++] = EMPTY;
      else this.pieces[this.first] = compact(piece.subarray(cut));
      this.bytes -= cut;
      left -= cut;
    }
    if (this.first > 64 && this.first * 2 > this.pieces.length) {
      this.pieces = this.pieces.slice(this.first);
      this.first = 0;
    }
    return dropped;
  }

  toString(): string {
    return Buffer.concat(this.pieces.slice(this.first)).toString('utf8');
  }
}

/**
 * Keeps the first `headLimit` bytes of a UTF-8 stream verbatim and, once the stream is longer than
 * head and tail together, only its last `tailLimit` bytes; the middle is counted, then dropped.
 * Cuts always fall on code point boundaries. Pushed chunks must hold whole code points.
 */
export class HeadTailBuffer {
  private readonly head = new PieceQueue();
  private readonly tail = new PieceQueue();
  private headOpen: boolean;
  private pushedBytes = 0;
  private elided = { bytes: 0, lines: 0 };

  constructor(
    private readonly headLimit: number,
    private readonly tailLimit: number,
  ) {
    this.headOpen = headLimit > 0;
  }

  /** Bytes pushed so far. */
  get totalBytes(): number {
    return this.pushedBytes;
  }

  /** Bytes currently kept in memory. */
  get retainedBytes(): number {
    return this.head.bytes + this.tail.bytes;
  }

  /** Bytes dropped from the middle so far. */
  get elidedBytes(): number {
    return this.elided.bytes;
  }

  /** Newline characters among the dropped bytes. */
  get elidedLines(): number {
    return this.elided.lines;
  }

  push(bytes: Buffer): void {
    if (!bytes.length) return;
    this.pushedBytes += bytes.length;
    let rest = bytes;
    if (this.headOpen) {
      const room = this.headLimit - this.head.bytes;
      if (rest.length <= room) {
        this.head.append(rest);
        return;
      }
      const cut = floorToCodePoint(rest, room);
      this.head.append(compact(rest.subarray(0, cut)));
      this.headOpen = false;
      rest = rest.subarray(cut);
    }
    this.tail.append(rest);
    if (this.pushedBytes > this.headLimit + this.tailLimit && this.tail.bytes > this.tailLimit) {
      for (const dropped of this.tail.dropFront(this.tail.bytes - this.tailLimit)) {
        this.elided.bytes += dropped.length;
        this.elided.lines += countNewlines(dropped);
      }
    }
  }

  /** Head, elision marker when something was dropped (without its leading newline if the head is empty), tail. */
  render(): string {
    const head = this.head.toString();
    const tail = this.tail.toString();
    if (!this.elided.bytes) return head + tail;
    const marker = formatElisionMarker(this.elided.lines, this.elided.bytes);
    return head ? head + marker + tail : marker.slice(1) + tail;
  }
}
