import { DisplayOutput, STATUS_MIME_TYPE } from '@kernelfleet/contracts';
import { htmlToMarkdown } from './html-markdown-converter';

/** What one display_data / execute_result MIME bundle becomes. */
export interface MappedDisplay {
  /** Rich outputs in order: images (png, then jpeg), json, then the text output if any. */
  outputs: DisplayOutput[];
  /** The same text as the text output, for the caller to append to the execution's output. */
  text?: string;
}

const IMAGE_TYPES = ['image/png', 'image/jpeg'] as const;

/** Jupyter allows multiline string values as arrays of lines; on the wire they are usually strings. */
function stringValue(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.join('');
  return undefined;
}

/** Ends text with exactly one `\n` (CRLF/CR runs at the end included); empty text stays empty. */
export function normaliseDisplayText(text: string): string {
  const body = text.replace(/[\r\n]+$/, '');
  return body.length ? `${body}\n` : '';
}

/**
 * IPython's text/plain for an object without a text repr, e.g. `<IPython.core.display.HTML object>`
 * (what `display(HTML(...))` sends next to its text/html) or `<__main__.Table at 0x7f…>`.
 */
const PLACEHOLDER_REPR = /^<[A-Za-z_][\w.]* (?:object|at 0x[0-9a-f]+)>\s*$/;

function chooseText(bundle: Record<string, unknown>): { text: string; markdown: boolean } | undefined {
  const markdown = stringValue(bundle['text/markdown']);
  if (markdown !== undefined) return { text: markdown, markdown: true };
  const plain = stringValue(bundle['text/plain']);
  const html = stringValue(bundle['text/html']);
  // text/plain wins, unless it is only a placeholder for the HTML it accompanies.
  if (plain !== undefined && !(html !== undefined && PLACEHOLDER_REPR.test(plain))) return { text: plain, markdown: false };
  if (html !== undefined) return { text: htmlToMarkdown(html), markdown: true };
  return undefined;
}

/**
 * Maps a display_data / execute_result MIME bundle to display outputs.
 *
 * - A bundle carrying {@link STATUS_MIME_TYPE} becomes only a `status` output (no text).
 * - `image/png` then `image/jpeg` become image outputs (base64, whitespace removed).
 * - `application/json` becomes a json output.
 * - Text: `text/markdown` (markdown), else `text/plain` (unless it is only IPython's placeholder
 *   repr next to text/html), else `text/html` converted to Markdown;
 *   normalised to end with a single newline, returned as a text output and as `text`.
 */
export function toDisplayOutputs(bundle: Record<string, unknown>): MappedDisplay {
  if (Object.prototype.hasOwnProperty.call(bundle, STATUS_MIME_TYPE)) {
    return { outputs: [{ type: 'status', event: bundle[STATUS_MIME_TYPE] }] };
  }
  const outputs: DisplayOutput[] = [];
  for (const mimeType of IMAGE_TYPES) {
    const data = stringValue(bundle[mimeType]);
    if (data !== undefined) outputs.push({ type: 'image', mimeType, data: data.replace(/\s+/g, '') });
  }
  if (Object.prototype.hasOwnProperty.call(bundle, 'application/json')) {
    outputs.push({ type: 'json', data: bundle['application/json'] });
  }
  const chosen = chooseText(bundle);
  const text = chosen ? normaliseDisplayText(chosen.text) : '';
  if (!text) return { outputs };
  outputs.push({ type: 'text', text, markdown: chosen?.markdown ?? false });
  return { outputs, text };
}
