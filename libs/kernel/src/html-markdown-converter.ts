/**
 * A small HTML → Markdown converter for kernels that only offer `text/html` (no `text/plain`).
 * It understands p, div, br, strong/b, em/i, code, pre, a, h1–h6, ul/ol/li and tr/td; every other
 * tag is dropped (its text kept; script and style contents removed). It is not an HTML parser:
 * malformed markup degrades to its text.
 */

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};

const TOKEN = /<!--[\s\S]*?-->|<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>|<(\/?)([a-zA-Z][a-zA-Z0-9]*)\b((?:[^>"']|"[^"]*"|'[^']*')*)>|([^<]+)|(<)/g;

const PRE_MARK = '\u0000';
/** Stands for one level of list indentation until lines have been trimmed. */
const INDENT_MARK = '\u0001';

/** Decodes named (amp, lt, gt, quot, apos, nbsp) and numeric character references. */
export function decodeHtmlEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[ref.toLowerCase()] ?? whole;
  });
}

function attribute(attrs: string, name: string): string | undefined {
  const match = new RegExp(`\\b${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(attrs);
  if (!match) return undefined;
  return decodeHtmlEntities(match[1] ?? match[2] ?? match[3] ?? '');
}

/** Mutable state of one conversion. */
class MarkdownWriter {
  private readonly parts: string[] = [];
  private readonly preBlocks: string[] = [];
  private readonly lists: { ordered: boolean; next: number }[] = [];
  private readonly links: (string | undefined)[] = [];
  private pre: string[] | undefined;

  text(raw: string): void {
    const decoded = decodeHtmlEntities(raw);
    if (this.pre) this.pre.push(decoded);
    else this.parts.push(decoded.replace(/\s+/g, ' '));
  }

  open(tag: string, attrs: string): void {
    if (this.pre) return; // markup inside <pre> (e.g. <code>) only contributes its text
    switch (tag) {
      case 'p':
      case 'div':
      case 'table':
        return this.block();
      case 'br':
        return this.raw('\n');
      case 'strong':
      case 'b':
        return this.raw('**');
      case 'em':
      case 'i':
        return this.raw('*');
      case 'code':
        return this.raw('`');
      case 'pre':
        this.pre = [];
        return;
      case 'a':
        this.links.push(attribute(attrs, 'href'));
        return this.raw(this.links[this.links.length - 1] === undefined ? '' : '[');
      case 'ul':
      case 'ol':
        this.lists.push({ ordered: tag === 'ol', next: 1 });
        return this.block();
      case 'li': {
        const list = this.lists[this.lists.length - 1];
        const indent = INDENT_MARK.repeat(Math.max(0, this.lists.length - 1));
        const bullet = list?.ordered ? `${list.next++}.` : '-';
        return this.raw(`\n${indent}${bullet} `);
      }
      case 'tr':
        return this.raw('\n');
      case 'td':
      case 'th':
        return this.raw(' ');
      default:
        if (/^h[1-6]$/.test(tag)) {
          this.block();
          this.raw(`${'#'.repeat(Number(tag[1]))} `);
        }
    }
  }

  close(tag: string): void {
    if (this.pre) {
      if (tag !== 'pre') return;
      const body = this.pre.join('').replace(/^\n/, '').replace(/\n+$/, '');
      this.pre = undefined;
      this.preBlocks.push(body);
      this.block();
      this.raw(`${PRE_MARK}${this.preBlocks.length - 1}${PRE_MARK}`);
      return this.block();
    }
    switch (tag) {
      case 'p':
      case 'div':
      case 'table':
        return this.block();
      case 'strong':
      case 'b':
        return this.raw('**');
      case 'em':
      case 'i':
        return this.raw('*');
      case 'code':
        return this.raw('`');
      case 'a': {
        const href = this.links.pop();
        return this.raw(href === undefined ? '' : `](${href})`);
      }
      case 'ul':
      case 'ol':
        this.lists.pop();
        return this.block();
      default:
        if (/^h[1-6]$/.test(tag)) this.block();
    }
  }

  finish(): string {
    if (this.pre) this.close('pre');
    const markdown = this.parts
      .join('')
      .split('\n')
      .map((line) => line.trim())
      .join('\n')
      .replace(new RegExp(INDENT_MARK, 'g'), '  ')
      .replace(/\n{3,}/g, '\n\n')
      .trim();
    return markdown.replace(new RegExp(`${PRE_MARK}(\\d+)${PRE_MARK}`, 'g'), (_m, i: string) => `\`\`\`\n${this.preBlocks[Number(i)]}\n\`\`\``);
  }

  private block(): void {
    this.raw('\n\n');
  }

  private raw(text: string): void {
    this.parts.push(text);
  }
}

/** Converts an HTML fragment to basic Markdown, e.g. `<p><strong>Hello</strong></p>` → `**Hello**`. */
export function htmlToMarkdown(html: string): string {
  const writer = new MarkdownWriter();
  for (const match of html.matchAll(TOKEN)) {
    const [, , slash, tagName, attrs, text, strayLt] = match;
    if (text !== undefined) writer.text(text);
    else if (strayLt !== undefined) writer.text('<');
    else if (tagName !== undefined) {
      const tag = tagName.toLowerCase();
      if (slash) writer.close(tag);
      else writer.open(tag, attrs ?? '');
    }
  }
  return writer.finish();
}
