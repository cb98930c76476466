/** Quick pre-check: text without these code units needs no sanitising. */
const NEEDS_WORK = /[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]/;
const SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/**
 * Complete escape sequences (CSI; OSC/DCS/SOS/PM/APC strings ended by BEL or ST; other ESC sequences),
 * or, captured, an unfinished one at the very end of the text.
 */
const ESCAPE_SEQUENCE =
  /\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-OQ-WYZ\\`-~])|(\x1b(?:\[[0-?]*[ -/]*|[\]PX^_][^\x07\x1b]*\x1b?|[ -/]*)$)/g;
/** C0 controls except tab and newline, DEL, and C1 controls. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
/** An unfinished escape sequence longer than this is not held back: it is treated as text. */
const MAX_PENDING_ESCAPE = 4096;

/**
 * Replaces lone UTF-16 surrogates with U+FFFD.
 */
export function toWellFormed(text: string): string {
  return SURROGATE.test(text) ? text.replace(LONE_SURROGATE, '\ufffd') : text;
}

/**
 * Sanitises one complete text: well-formed, no ANSI escape sequences, no control characters
 * other than `\t` and `\n`. An unterminated escape sequence at the end is dropped.
 */
export function sanitizeText(text: string): string {
  const sanitizer = new ChunkSanitizer();
  return sanitizer.push(text) + sanitizer.flush();
}

/**
 * Streaming sanitiser for the chunks of one output stream.
 *
 * Byte chunks are decoded as UTF-8 in streaming mode, so a code point split across chunks decodes
 * correctly; string chunks are made well-formed one by one. An escape sequence cut by a chunk
 * boundary is held back and stripped once complete.
 */
export class ChunkSanitizer {
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private decoding = false;
  private pendingEscape = '';

  /** UTF-16 code units held back (an unfinished escape sequence). */
  get pendingLength(): number {
    return this.pendingEscape.length;
  }

  /** Sanitises `chunk` and returns the text that is ready. */
  push(chunk: string | Uint8Array): string {
    if (typeof chunk === 'string') return this.strip(this.flushDecoder() + toWellFormed(chunk));
    this.decoding = true;
    return this.strip(this.decoder.decode(chunk, { stream: true }));
  }

  /** Ends the stream: returns what was still buffered; an unfinished escape sequence is dropped. */
  flush(): string {
    const text = this.strip(this.flushDecoder());
    this.pendingEscape = '';
    return text;
  }

  private flushDecoder(): string {
    if (!this.decoding) return '';
    this.decoding = false;
    return this.decoder.decode();
  }

  private strip(input: string): string {
    const text = this.pendingEscape + input;
    this.pendingEscape = '';
    if (!NEEDS_WORK.test(text)) return text;
    return text
      .replace(ESCAPE_SEQUENCE, (match: string, unfinished: string | undefined) => {
        if (unfinished === undefined) return '';
        if (match.length > MAX_PENDING_ESCAPE) return match;
        this.pendingEscape = match;
        return '';
      })
      .replace(CONTROL, '');
  }
}
