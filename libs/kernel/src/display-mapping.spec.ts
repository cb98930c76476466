import { STATUS_MIME_TYPE } from '@kernelfleet/contracts';
import { normaliseDisplayText, toDisplayOutputs } from './display-mapping';
import { decodeHtmlEntities, htmlToMarkdown } from './html-markdown-converter';

describe('toDisplayOutputs', () => {
  it('turns the status MIME into only a status output, without text', () => {
    const data = { phase: 'loading', progress: 0.5 };
    expect(toDisplayOutputs({ [STATUS_MIME_TYPE]: data, 'text/plain': 'ignored' })).toEqual({
      outputs: [{ type: 'status', event: data }],
    });
  });

  it('prefers text/markdown over text/plain', () => {
    expect(toDisplayOutputs({ 'text/plain': '<IPython.core.display.Markdown object>', 'text/markdown': '# Title' })).toEqual({
      outputs: [{ type: 'text', text: '# Title\n', markdown: true }],
      text: '# Title\n',
    });
  });

  it('maps png + plain to an image and a text output', () => {
    expect(toDisplayOutputs({ 'image/png': 'iVBORw0K\nGgo=\n', 'text/plain': '<Figure size 640x480 with 1 Axes>' })).toEqual({
      outputs: [
        { type: 'image', mimeType: 'image/png', data: 'iVBORw0KGgo=' },
        { type: 'text', text: '<Figure size 640x480 with 1 Axes>\n', markdown: false },
      ],
      text: '<Figure size 640x480 with 1 Axes>\n',
    });
  });

  it('emits png before jpeg', () => {
    const { outputs } = toDisplayOutputs({ 'image/jpeg': '/9j/', 'image/png': 'iVBO' });
    expect(outputs.map((o) => (o.type === 'image' ? o.mimeType : o.type))).toEqual(['image/png', 'image/jpeg']);
  });

  it('maps json + plain to a json and a text output', () => {
    expect(toDisplayOutputs({ 'application/json': { a: [1, 2] }, 'text/plain': '<IPython.core.display.JSON object>' })).toEqual({
      outputs: [
        { type: 'json', data: { a: [1, 2] } },
        { type: 'text', text: '<IPython.core.display.JSON object>\n', markdown: false },
      ],
      text: '<IPython.core.display.JSON object>\n',
    });
  });

  it('converts text/html to Markdown when there is no other text', () => {
    expect(toDisplayOutputs({ 'text/html': '<p><strong>Hello</strong></p>' })).toEqual({
      outputs: [{ type: 'text', text: '**Hello**\n', markdown: true }],
      text: '**Hello**\n',
    });
  });

  it('prefers text/plain over text/html', () => {
    expect(toDisplayOutputs({ 'text/html': '<b>x</b>', 'text/plain': 'x' }).text).toBe('x\n');
  });

  it('uses text/html when text/plain is only IPython\'s placeholder repr (display(HTML(...)))', () => {
    const html = '<p><strong>Hello</strong></p>';
    expect(toDisplayOutputs({ 'text/html': html, 'text/plain': '<IPython.core.display.HTML object>' })).toEqual({
      outputs: [{ type: 'text', text: '**Hello**\n', markdown: true }],
      text: '**Hello**\n',
    });
    expect(toDisplayOutputs({ 'text/html': html, 'text/plain': '<__main__.Table at 0x7f3a2c1b9d50>' }).text).toBe('**Hello**\n');
    // Without HTML the placeholder is all there is, and it stays.
    expect(toDisplayOutputs({ 'text/plain': '<IPython.core.display.JSON object>' }).text).toBe('<IPython.core.display.JSON object>\n');
  });

  it('returns no text for empty text and no outputs for unknown MIME types', () => {
    expect(toDisplayOutputs({ 'text/plain': '\n' })).toEqual({ outputs: [] });
    expect(toDisplayOutputs({ 'application/vnd.custom': 1 })).toEqual({ outputs: [] });
  });
});

describe('normaliseDisplayText', () => {
  it('ends text with exactly one newline', () => {
    expect(normaliseDisplayText('42')).toBe('42\n');
    expect(normaliseDisplayText('42\n\n\r\n')).toBe('42\n');
    expect(normaliseDisplayText('a\n\nb')).toBe('a\n\nb\n');
    expect(normaliseDisplayText('')).toBe('');
  });
});

describe('htmlToMarkdown', () => {
  it('handles inline formatting, links and line breaks', () => {
    expect(htmlToMarkdown('<p>A <em>b</em> <i>c</i> <b>d</b> <code>e()</code><br/>next <a href="https://x.y/?a=1&amp;b=2">link</a></p>')).toBe(
      'A *b* *c* **d** `e()`\nnext [link](https://x.y/?a=1&b=2)',
    );
  });

  it('handles headings, paragraphs and lists', () => {
    const html = '<h1>Title</h1><p>One</p><p>Two</p><h3>Sub</h3><ul><li>a</li><li>b<ol><li>x</li><li>y</li></ol></li></ul>';
    expect(htmlToMarkdown(html)).toBe('# Title\n\nOne\n\nTwo\n\n### Sub\n\n- a\n- b\n\n  1. x\n  2. y');
  });

  it('keeps pre blocks verbatim as fenced code', () => {
    expect(htmlToMarkdown('<p>Code:</p><pre><code>def f():\n\n    return 1 &lt; 2</code></pre>')).toBe('Code:\n\n```\ndef f():\n\n    return 1 < 2\n```');
  });

  it('strips other tags, scripts, styles and comments, and collapses whitespace', () => {
    expect(htmlToMarkdown('<div class="x"><span>a\n   b</span><script>alert(1)</script><style>p{}</style><!-- c --></div>')).toBe('a b');
  });

  it('decodes entities', () => {
    expect(decodeHtmlEntities('&lt;&gt;&amp;&quot;&#39;&#x41;&#66;&nbsp;&unknown;')).toBe('<>&"\'AB &unknown;');
    expect(htmlToMarkdown('1 < 2 &amp;&amp; 3')).toBe('1 < 2 && 3');
  });
});
