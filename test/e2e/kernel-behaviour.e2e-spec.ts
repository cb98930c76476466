import type { DisplayOutput, Execution } from '@kernelfleet/contracts';
import { readSse, type SseEvent } from '../support/sse-client';
import { Stack } from '../support/stack';

/**
 * What a client sees of one execution on a real kernel (seed-behaviour.md §4: 1–4, 6, 23–25):
 * output capture and sanitising, rich display, stdin refusal, errors, cancel, environment.
 */

jest.setTimeout(60_000);

const STDIN_NOTICE = '[Kernel requested stdin; interactive input is not supported.]';

describe('kernel behaviour seen by a client', () => {
  let stack: Stack;

  beforeAll(async () => {
    // Secrets in the worker's own environment must never reach a kernel (behaviour 24).
    stack = await Stack.start({ workerEnv: { KF_SECRET_TOKEN: 's3cret', OPENAI_API_KEY: 'sk-x' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Submits, then follows the execution's event stream until its `result` (the stream closes). */
  async function runWithEvents(sessionId: string, body: Record<string, unknown>): Promise<{ events: SseEvent[]; execution: Execution }> {
    const { executionId } = await stack.submit(sessionId, body);
    const sse = await readSse(`${stack.url}/v1/executions/${executionId}/events`, stack.headers());
    expect(sse.status).toBe(200);
    const last = sse.events[sse.events.length - 1];
    expect(last?.event).toBe('result');
    return { events: sse.events, execution: JSON.parse(last.data) as Execution };
  }

  it('captures text and display outputs in order; markdown wins, html becomes markdown, status MIME is a status event, no text (1, 23)', async () => {
    const code = [
      'from IPython.display import display, Markdown, HTML',
      "print('before')",
      "display(Markdown('**hi**'))",
      "display({'application/json': {'a': 1}, 'text/plain': 'x'}, raw=True)",
      "display({'application/x-kernelfleet-status': {'phase': 'loading'}, 'text/plain': 'STATUS-TEXT'}, raw=True)",
      "display(HTML('<p><strong>Hello</strong></p>'))",
      "print('after')",
    ].join('\n');
    const { events, execution } = await runWithEvents('kb-display', { code });

    expect(execution.status).toBe('completed');
    const expectedDisplays: DisplayOutput[] = [
      { type: 'text', text: '**hi**\n', markdown: true },
      { type: 'json', data: { a: 1 } },
      { type: 'text', text: 'x\n', markdown: false },
      { type: 'text', text: '**Hello**\n', markdown: true },
    ];
    // Status events are kept in the result in their place, as the original executor kept them.
    const status: DisplayOutput = { type: 'status', event: { phase: 'loading' } };
    expect(execution.result?.displayOutputs).toEqual([...expectedDisplays.slice(0, 3), status, expectedDisplays[3]]);
    expect(execution.result?.output).toBe('before\n**hi**\nx\n**Hello**\nafter\n');
    expect(execution.result?.output).not.toContain('STATUS-TEXT');

    // On the stream: the same displays in order, and the status bundle as a `status` event only.
    const displays = events.filter((e) => e.event === 'display').map((e) => JSON.parse(e.data) as DisplayOutput);
    expect(displays).toEqual(expectedDisplays);
    const statuses = events.filter((e) => e.event === 'status').map((e) => JSON.parse(e.data) as unknown);
    expect(statuses).toEqual([{ phase: 'loading' }]);
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const kinds = events.map((e) => e.event).filter((k) => k === 'display' || k === 'status');
    expect(kinds).toEqual(['display', 'display', 'display', 'status', 'display']);
  });

  it('sends a matplotlib figure left open at the end of the cell as an image/png and closes it (1)', async () => {
    const plot = await stack.run('kb-plot', {
      code: 'import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3], [3, 1, 2]);',
    });
    expect(plot.status).toBe('completed');
    const images = (plot.result?.displayOutputs ?? []).filter((d) => d.type === 'image');
    expect(images).toHaveLength(1);
    const image = images[0] as Extract<DisplayOutput, { type: 'image' }>;
    expect(image.mimeType).toBe('image/png');
    expect(Buffer.from(image.data, 'base64').subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

    const after = await stack.run('kb-plot', { code: 'print(len(plt.get_fignums()))' });
    expect(after.result?.output).toBe('0\n');
  });

  it('refuses input() with exit 1 and the stdin notice; the next execution works and keeps globals (2)', async () => {
    const before = await stack.run('kb-stdin', { code: 'kept = 7' });
    expect(before.status).toBe('completed');

    const asked = await stack.run('kb-stdin', { code: "print('asking')\nname = input('name? ')\nprint('unreachable')" });
    expect(asked.status).toBe('failed');
    expect(asked.result?.exitCode).toBe(1);
    expect(asked.result?.stdinRequested).toBe(true);
    expect(asked.result?.cancelled).toBe(false);
    expect(asked.result?.output.split('\n')[0]).toBe(STDIN_NOTICE);
    expect(asked.result?.output).toContain('asking\n');
    expect(asked.result?.output).not.toContain('unreachable');

    const next = await stack.run('kb-stdin', { code: 'print(kept * 6)' });
    expect(next.status).toBe('completed');
    expect(next.result?.output).toBe('42\n');
    expect(next.result?.stdinRequested).toBe(false);
    expect(next.kernel).toMatchObject({ generation: 1, restarted: false, stateLost: false });
  });

  it('reports a Python error as failed, exit 1, not cancelled, with the traceback sans ANSI (3, 25)', async () => {
    const execution = await stack.run('kb-error', {
      code: "print('partial')\ndef explode():\n    raise ValueError('boom 42')\nexplode()",
    });
    expect(execution.status).toBe('failed');
    expect(execution.result?.exitCode).toBe(1);
    expect(execution.result?.cancelled).toBe(false);
    expect(execution.result?.stdinRequested).toBe(false);
    const output = execution.result?.output ?? '';
    expect(output.startsWith('partial\n')).toBe(true);
    expect(output).toMatch(/ValueError\b.*boom 42/);
    expect(output).toContain('explode');
    expect(output).not.toMatch(/\x1b|\r/);
  });

  it('strips ANSI escapes and carriage returns (4)', async () => {
    const execution = await stack.run('kb-ansi', { code: "print('\\x1b[31mred\\x1b[0m\\r')" });
    expect(execution.status).toBe('completed');
    expect(execution.result?.output).toBe('red\n');
  });

  it('keeps globals across executions and runs top-level await (25)', async () => {
    const first = await stack.run('kb-globals', { code: 'x = 41' });
    expect(first.status).toBe('completed');
    expect(first.kernel).toMatchObject({ generation: 1, restarted: true, stateLost: false });

    const second = await stack.run('kb-globals', { code: 'print(x + 1)' });
    expect(second.result?.output).toBe('42\n');
    expect(second.kernel).toMatchObject({ generation: 1, restarted: false, stateLost: false });

    const awaited = await stack.run('kb-globals', {
      code: "import asyncio\nawait asyncio.sleep(0.01)\nprint('awaited', x)",
    });
    expect(awaited.status).toBe('completed');
    expect(awaited.result?.output).toBe('awaited 41\n');
  });

  it('streams stdout of a running loop as several stdout events, in order (25)', async () => {
    const code = "import time\nfor i in range(4):\n    print(f'tick {i}')\n    time.sleep(0.3)";
    const { events, execution } = await runWithEvents('kb-stream', { code });
    const stdout = events.filter((e) => e.event === 'stdout').map((e) => (JSON.parse(e.data) as { text: string }).text);
    expect(stdout.length).toBeGreaterThanOrEqual(2);
    expect(stdout.join('')).toBe('tick 0\ntick 1\ntick 2\ntick 3\n');
    expect(execution.result?.output).toBe('tick 0\ntick 1\ntick 2\ntick 3\n');
  });

  it('cancels a running execution: partial output kept, no timeout notice, the kernel survives (6, 25)', async () => {
    await stack.run('kb-cancel', { code: 'warm = True' });
    const { executionId } = await stack.submit('kb-cancel', {
      code: "survivor = 'alive'\nprint('partial', flush=True)\nimport time\ntime.sleep(30)\nprint('never')",
    });
    // Wait until the partial output was produced, so the cancel hits the sleep.
    const seen = await readSse(`${stack.url}/v1/executions/${executionId}/events`, stack.headers(), (events) =>
      events.some((e) => e.event === 'stdout'),
    );
    expect(seen.events.some((e) => e.event === 'stdout')).toBe(true);

    const cancelledAt = Date.now();
    const cancel = await stack.request('POST', `/v1/executions/${executionId}/cancel`);
    expect(cancel.status).toBe(202);
    const execution = await stack.settled(executionId);
    expect(Date.now() - cancelledAt).toBeLessThan(2_000);

    expect(execution.status).toBe('cancelled');
    expect(execution.phase).toBe('run');
    expect(execution.result?.cancelled).toBe(true);
    expect(execution.result?.exitCode).toBeNull();
    expect(execution.result?.output.startsWith('partial\n')).toBe(true);
    expect(execution.result?.output).not.toContain('timed out');
    expect(execution.result?.output).not.toContain('never');

    const next = await stack.run('kb-cancel', { code: 'print(survivor)' });
    expect(next.status).toBe('completed');
    expect(next.result?.output).toBe('alive\n');
    expect(next.kernel).toMatchObject({ generation: 1, restarted: false, stateLost: false });
  });

  it('gives the kernel an allowlisted environment: no secrets, no Redis URL (24)', async () => {
    const execution = await stack.run('kb-env', {
      code: [
        'import json, os',
        'print(json.dumps(sorted(os.environ)))',
        "print(json.dumps({k: os.environ[k] for k in ('PYTHONUNBUFFERED', 'PYTHONIOENCODING')}))",
        "print(json.dumps(sorted(k for k, v in os.environ.items() if 's3cret' in v or 'sk-x' == v or 'redis://' in v)))",
      ].join('\n'),
    });
    expect(execution.status).toBe('completed');
    const [names, forced, leaking] = (execution.result?.output ?? '').trim().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(names).toEqual(expect.arrayContaining(['PATH', 'PYTHONUNBUFFERED']));
    for (const secret of ['KF_SECRET_TOKEN', 'OPENAI_API_KEY', 'REDIS_URL', 'KF_TEST_REDIS_URL', 'KEY_PREFIX', 'JUPYTER_TOKEN', 'WORKER_ID']) {
      expect(names).not.toContain(secret);
    }
    expect(forced).toEqual({ PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8' });
    expect(leaking).toEqual([]);
  });
});
