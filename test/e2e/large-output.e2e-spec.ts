import type { Execution } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';
import { readSse } from '../support/sse-client';

jest.setTimeout(90_000);

/**
 * Output bounds end to end (DESIGN.md §3 output sink, invariant 11; seed behaviour 7): the
 * result keeps the first 20 KB and the last 50 KB with an elision marker between, the counters
 * are exact, and the artifact holds the full output, head included, byte for byte.
 */

const HEAD_BYTES = 20 * 1024;
const TAIL_BYTES = 50 * 1024;

/** Python that writes `count` lines `f'{i:0<width>d} ' + fill * pad`, in batches of 1000 lines. */
function linesCode(count: number, width: number, fill: string, pad: number): string {
  return [
    'import sys',
    `for _b in range(0, ${count}, 1000):`,
    `    sys.stdout.write(''.join(f'{_i:0${width}d} ' + '${fill}' * ${pad} + '\\n' for _i in range(_b, min(_b + 1000, ${count}))))`,
  ].join('\n');
}

/** The same text, built here independently. */
function expectedLines(count: number, width: number, fill: string, pad: number): string {
  const filler = fill.repeat(pad);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(`${String(i).padStart(width, '0')} ${filler}\n`);
  return parts.join('');
}

function newlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** 1024-based, one decimal, as the seed's messages show sizes (e.g. `9.9 MB`, `6.3 KB`). */
function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (unit < units.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Checks the result of an ASCII output that overflowed head + tail, and its artifact. */
async function expectOverflowed(stack: Stack, execution: Execution, expected: string): Promise<void> {
  const total = Buffer.byteLength(expected);
  expect(total).toBe(expected.length); // ASCII: bytes == characters, cuts are exact
  expect(execution.status).toBe('completed');
  const result = execution.result!;
  expect(result.exitCode).toBe(0);
  expect(result.truncated).toBe(true);
  expect(result.totalBytes).toBe(total);
  expect(result.totalLines).toBe(newlines(expected) + 1);

  const head = expected.slice(0, HEAD_BYTES);
  const tail = expected.slice(total - TAIL_BYTES);
  const middle = expected.slice(HEAD_BYTES, total - TAIL_BYTES);
  const marker = `[… ${newlines(middle)} lines elided (${humanSize(middle.length)}) …]`;
  expect(result.output.startsWith(head)).toBe(true);
  expect(result.output.endsWith(tail)).toBe(true);
  expect(result.output).toContain(marker);
  expect(result.output).toBe(`${head}\n${marker}\n${tail}`);
  expect(result.outputBytes).toBe(Buffer.byteLength(result.output));
  expect(result.outputLines).toBe(newlines(result.output) + 1);

  expect(result.artifactId).toEqual(expect.any(String));
  const res = await fetch(`${stack.url}/v1/executions/${execution.executionId}/artifact`, {
    headers: { authorization: `Bearer ${stack.apiKey}` },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const body = Buffer.from(await res.arrayBuffer());
  expect(body.length).toBe(total);
  expect(body.equals(Buffer.from(expected))).toBe(true);
}

describe('large output', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('10 MB of stdout: exact counters, head + marker + tail, full artifact and a complete event stream', async () => {
    const count = Math.ceil((10 * 1024 * 1024) / 100); // 100-byte lines → just over 10 MB
    const expected = expectedLines(count, 8, 'x', 90);
    expect(expected.length).toBeGreaterThanOrEqual(10 * 1024 * 1024);

    // A plain print loop: ~105k small writes the kernel, worker and sink must all keep up with.
    const code = `for i in range(${count}):\n    print(f'{i:08d} ' + 'x' * 90)`;
    const execution = await stack.run('big', { code, timeoutMs: 80_000 });
    await expectOverflowed(stack, execution, expected);
    expect(await stack.get(execution.executionId)).toEqual(execution);

    // The events carried every byte exactly once, in order.
    const read = await readSse(`${stack.url}/v1/executions/${execution.executionId}/events`, {
      authorization: `Bearer ${stack.apiKey}`,
    });
    const streamed = read.events
      .filter((e) => e.event === 'stdout')
      .map((e) => (JSON.parse(e.data) as { text: string }).text)
      .join('');
    expect(streamed.length).toBe(expected.length);
    expect(streamed === expected).toBe(true);
    expect(read.events[read.events.length - 1].event).toBe('result');
  });

  it('1.5 × 50 KB of output: truncated, and the artifact equals the full output byte for byte', async () => {
    const count = 768; // 768 lines × 100 bytes = 75 KB = 1.5 × 50 KB
    const expected = expectedLines(count, 5, 'y', 93);
    expect(expected.length).toBe(1.5 * 50 * 1024);
    const execution = await stack.run('one-and-a-half', { code: linesCode(count, 5, 'y', 93) });
    await expectOverflowed(stack, execution, expected);
  });

  it('a small output is whole, not truncated, and has no artifact (404 problem+json)', async () => {
    const execution = await stack.run('small', { code: "print('small output')" });
    expect(execution.status).toBe('completed');
    expect(execution.result).toMatchObject({ output: 'small output\n', truncated: false, totalBytes: 13, totalLines: 2 });
    expect(execution.result?.artifactId).toBeUndefined();

    const res = await stack.request('GET', `/v1/executions/${execution.executionId}/artifact`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 404, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  });

  it('output just at head + tail (70 KB) is whole: not truncated, no artifact', async () => {
    const count = (HEAD_BYTES + TAIL_BYTES) / 128; // 560 lines × 128 bytes = exactly 70 KB
    const expected = expectedLines(count, 6, 'z', 120);
    expect(expected.length).toBe(HEAD_BYTES + TAIL_BYTES);
    const execution = await stack.run('at-limit', { code: linesCode(count, 6, 'z', 120) });
    expect(execution.status).toBe('completed');
    expect(execution.result?.truncated).toBe(false);
    expect(execution.result?.output).toBe(expected);
    expect(execution.result?.artifactId).toBeUndefined();
    expect((await stack.request('GET', `/v1/executions/${execution.executionId}/artifact`)).status).toBe(404);
  });
});
