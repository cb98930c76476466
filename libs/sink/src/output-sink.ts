import { countNewlines } from './byte-scanner';
import { ChunkSanitizer, sanitizeText } from './chunk-sanitizer';
import { HeadTailBuffer } from './head-tail-buffer';
import { LineCapper } from './line-capper';

/** Default output limits, in UTF-8 bytes. */
export const DEFAULT_SINK_LIMITS = {
  /** Kept verbatim from the start of the (column-capped) output. */
  headBytes: 20480,
  /** Kept from the end of the output once it outgrows head + tail. */
  tailBytes: 51200,
  /** Longest line kept whole, newline excluded. */
  lineBytes: 768,
} as const;

/**
 * Uncapped text is held for the artifact until the output overflows; a few giant lines can keep
 * capped output small while the uncapped text grows, so past this multiple of head + tail the
 * sink overflows anyway. Keeps everything retained within 4 × (head + tail).
 */
const UNCAPPED_BACKLOG_FACTOR = 3;

/** Options of {@link OutputSink}; limits default to {@link DEFAULT_SINK_LIMITS}. */
export interface OutputSinkOptions {
  headBytes?: number;
  tailBytes?: number;
  lineBytes?: number;
  /**
   * Receives the full sanitised, uncapped stream once the output overflows: everything so far in
   * one call, then each later chunk. Never called for output that does not overflow.
   */
  onArtifact?: (text: string) => void;
}

/** Options of {@link OutputSink.finish}. */
export interface SinkFinishOptions {
  /** Shown as the output's first line, as `[notice]`; not counted in the totals. */
  notice?: string;
}

/** What an output stream came to. */
export interface SinkSummary {
  /** Notice line, head, elision marker and tail. */
  output: string;
  /** A line was cut or the middle elided. */
  truncated: boolean;
  /** The full stream went to the artifact writer. */
  overflowed: boolean;
  /** Lines printed by the code: newlines + 1, or 0 when nothing was printed. */
  totalLines: number;
  /** UTF-8 bytes printed by the code, after sanitising and before any capping. */
  totalBytes: number;
  /** Lines of `output`, same rule as `totalLines`. */
  outputLines: number;
  /** UTF-8 bytes of `output`. */
  outputBytes: number;
}

function checkLimit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be an integer >= 0, got ${value}`);
  return value;
}

function lineCount(newlines: number, bytes: number): number {
  return bytes > 0 ? newlines + 1 : 0;
}

/**
 * Collects the output stream of one execution with bounded memory: sanitises each chunk, caps
 * long lines, keeps head and tail, and hands the full stream to an artifact writer on overflow.
 */
export class OutputSink {
  private readonly sanitizer = new ChunkSanitizer();
  private readonly capper: LineCapper;
  private readonly window: HeadTailBuffer;
  private readonly overflowBytes: number;
  private readonly backlogLimit: number;
  private readonly onArtifact?: (text: string) => void;
  private backlog = '';
  private backlogBytes = 0;
  private bytes = 0;
  private newlines = 0;
  private overflow = false;
  private finished = false;

  /** @throws RangeError on a negative or non-integer limit, or a line cap below 4. */
  constructor(options: OutputSinkOptions = {}) {
    const head = checkLimit('headBytes', options.headBytes ?? DEFAULT_SINK_LIMITS.headBytes);
    const tail = checkLimit('tailBytes', options.tailBytes ?? DEFAULT_SINK_LIMITS.tailBytes);
    this.capper = new LineCapper(options.lineBytes ?? DEFAULT_SINK_LIMITS.lineBytes);
    this.window = new HeadTailBuffer(head, tail);
    this.overflowBytes = head + tail;
    this.backlogLimit = UNCAPPED_BACKLOG_FACTOR * (head + tail);
    this.onArtifact = options.onArtifact;
  }

  /** True once the output overflowed and the artifact writer took over the full stream. */
  get overflowed(): boolean {
    return this.overflow;
  }

  /** UTF-8 bytes printed so far (sanitised, uncapped). */
  get totalBytes(): number {
    return this.bytes;
  }

  /** Bytes of output the sink holds in memory; bounded whatever is pushed. */
  get retainedBytes(): number {
    return this.backlogBytes + this.window.retainedBytes + this.capper.heldBytes + this.sanitizer.pendingLength;
  }

  /**
   * Sanitises and accounts one chunk.
   * @returns the sanitised (not column-capped) text, for live listeners
   * @throws Error after {@link finish}
   */
  push(chunk: string | Uint8Array): string {
    if (this.finished) throw new Error('output sink is finished');
    const text = this.sanitizer.push(chunk);
    this.accept(text);
    return text;
  }

  /**
   * Ends the stream and returns its summary.
   * @throws Error when called twice
   */
  finish(options: SinkFinishOptions = {}): SinkSummary {
    if (this.finished) throw new Error('output sink is finished');
    this.finished = true;
    this.accept(this.sanitizer.flush());
    this.window.push(this.capper.flush());
    this.checkOverflow();
    const body = this.window.render();
    const output = options.notice === undefined ? body : `[${sanitizeText(options.notice)}]\n${body}`;
    const outputBytes = Buffer.byteLength(output, 'utf8');
    return {
      output,
      truncated: this.capper.truncated || this.window.elidedBytes > 0,
      overflowed: this.overflow,
      totalLines: lineCount(this.newlines, this.bytes),
      totalBytes: this.bytes,
      outputLines: lineCount(countNewlines(Buffer.from(output, 'utf8')), outputBytes),
      outputBytes,
    };
  }

  private accept(text: string): void {
    if (!text) return;
    const bytes = Buffer.from(text, 'utf8');
    this.bytes += bytes.length;
    this.newlines += countNewlines(bytes);
    this.window.push(this.capper.push(bytes));
    if (this.overflow) {
      this.onArtifact?.(text);
      return;
    }
    if (this.onArtifact) {
      this.backlog += text;
      this.backlogBytes += bytes.length;
    }
    this.checkOverflow();
  }

  private checkOverflow(): void {
    if (this.overflow) return;
    if (this.window.totalBytes <= this.overflowBytes && this.bytes <= this.backlogLimit) return;
    this.overflow = true;
    const backlog = this.backlog;
    this.backlog = '';
    this.backlogBytes = 0;
    if (backlog) this.onArtifact?.(backlog);
  }
}
