import type { Execution, ToolCall } from '@kernelfleet/contracts';
import { readSse, type SseEvent } from '../support/sse-client';
import { Stack } from '../support/stack';

/**
 * Tool calls from Python to the client (docs/tools.md): `tool.<name>(…)` in a kernel becomes a
 * `tool_call` event that the client answers on any api replica; the kernel's call returns the
 * answer. Real api replicas, worker and kernels.
 */
/** Polls GET until the execution lists a pending call; answers its callId. */
async function pendingCall(stack: Stack, executionId: string): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const pending = (await stack.get(executionId)).pendingToolCalls ?? [];
    if (pending.length) return pending[0].callId;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`execution ${executionId} never had a pending tool call`);
}

describe('tools: Python calls the client', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ apis: 2, workers: 1, workerEnv: { KERNEL_POOL_SIZE: '1' } });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  const answerUrl = (executionId: string, callId: string, api = 1) => `${stack.urls[api]}/v1/executions/${executionId}/tool-calls/${callId}`;
  const answer = (executionId: string, callId: string, body: unknown, opts: { api?: number; key?: string } = {}) =>
    stack.request('POST', `/v1/executions/${executionId}/tool-calls/${callId}`, body, { url: stack.urls[opts.api ?? 1], key: opts.key });

  /**
   * Follows the execution's events on api 0 and answers each `tool_call` (once) on api 1 with
   * `respond(call)`; answers undefined leave the call unanswered. Resolves with every event.
   */
  async function follow(executionId: string, respond: (call: ToolCall) => unknown | undefined): Promise<SseEvent[]> {
    const answered = new Set<string>();
    const result = await readSse(`${stack.urls[0]}/v1/executions/${executionId}/events`, stack.headers(), (events) => {
      for (const event of events) {
        if (event.event !== 'tool_call') continue;
        const call = JSON.parse(event.data) as ToolCall;
        if (answered.has(call.callId)) continue;
        answered.add(call.callId);
        const body = respond(call);
        if (body !== undefined) void answer(executionId, call.callId, body);
      }
      return false;
    });
    return result.events;
  }

  const run = async (sessionId: string, body: Record<string, unknown>, respond: (call: ToolCall) => unknown | undefined) => {
    const { executionId } = await stack.submit(sessionId, body);
    const events = await follow(executionId, respond);
    return { executionId, events, execution: await stack.get(executionId) };
  };

  it('returns the answer given on another api replica to the Python call, with tool_call and tool_result in the stream', async () => {
    const { events, execution } = await run(
      'tools-basic',
      {
        code: "r = tool.read(path='a.txt')\nprint(r['text'], tool['echo']({'x': [1, 2]}))",
        tools: [{ name: 'read', description: 'reads a file' }, { name: 'echo' }],
      },
      (call) => ({ ok: true, value: call.name === 'read' ? { text: `contents of ${call.args.path}` } : call.args }),
    );
    expect(execution.status).toBe('completed');
    expect(execution.result?.output).toBe("contents of a.txt {'x': [1, 2]}\n");
    const types = events.map((e) => e.event);
    expect(types.filter((t) => t === 'tool_call')).toHaveLength(2);
    expect(types.filter((t) => t === 'tool_result')).toHaveLength(2);
    expect(types.at(-1)).toBe('result');
    const firstCall = JSON.parse(events.find((e) => e.event === 'tool_call')!.data) as ToolCall;
    expect(firstCall).toMatchObject({ name: 'read', args: { path: 'a.txt' } });
    expect(firstCall.deadlineAt).toBeGreaterThan(Date.now() - 60_000);
    // Each call and each answer is a status event too, kept in the result in order.
    const statuses = execution.result!.displayOutputs.filter((d) => d.type === 'status').map((d) => (d as { event: { type: string } }).event.type);
    expect(statuses).toEqual(['tool_call', 'tool_result', 'tool_call', 'tool_result']);
  });

  it('works in per-call mode and after a reset, where a fresh kernel has `tool` too', async () => {
    const perCall = await run('tools-modes', { code: 'print(tool.one())', tools: [{ name: 'one' }], kernelMode: 'per-call' }, () => ({ ok: true, value: 1 }));
    expect(perCall.execution.result?.output).toBe('1\n');
    const reset = await run('tools-modes', { code: 'print(tool.two())', tools: [{ name: 'two' }], reset: true }, () => ({ ok: true, value: 2 }));
    expect(reset.execution.result?.output).toBe('2\n');
    expect(reset.execution.kernel?.restarted).toBe(true);
  });

  it('ends the execution even when the kernel leaves a connection to its bridge open and silent', async () => {
    const code = [
      'import socket',
      'k = get_ipython().kernel.get_parent("shell")["metadata"]["kernelfleet_tools"]',
      'held = socket.socket(socket.AF_UNIX)',
      'held.connect(k["socket"])',
      "print('held')",
    ].join('\n');
    const r = await stack.run('tools-silent', { code, tools: [{ name: 'x' }], timeoutMs: 20_000 });
    expect(r.status).toBe('completed');
    expect(r.result?.output).toBe('held\n');
  });

  it('answers five calls made from threads at once, each with its own answer', async () => {
    const code = [
      'from concurrent.futures import ThreadPoolExecutor',
      'with ThreadPoolExecutor(5) as pool:',
      "    print(sorted(pool.map(lambda i: tool.square(n=i), range(5))))",
    ].join('\n');
    const { execution } = await run('tools-threads', { code, tools: [{ name: 'square' }] }, (call) => ({ ok: true, value: (call.args.n as number) ** 2 }));
    expect(execution.result?.output).toBe('[0, 1, 4, 9, 16]\n');
  });

  it('raises ToolError with the client’s message, which the cell can catch', async () => {
    const code = "try:\n    tool.fail()\nexcept ToolError as e:\n    print('caught:', e)\nprint(isinstance(ToolError('x'), RuntimeError))";
    const { execution } = await run('tools-error', { code, tools: [{ name: 'fail' }] }, () => ({ ok: false, error: 'no such file' }));
    expect(execution.result?.output).toBe('caught: no such file\nTrue\n');
  });

  it('raises ToolTimeoutError when nobody answers within toolCallTimeoutMs, and the cell goes on; a late answer gets 410', async () => {
    const code = "try:\n    tool.slow()\nexcept ToolTimeoutError as e:\n    print('timed out:', type(e).__mro__[1].__name__)\nprint('after')";
    let callId = '';
    const { executionId, events, execution } = await run('tools-timeout', { code, tools: [{ name: 'slow' }], toolCallTimeoutMs: 1_000 }, (call) => {
      callId = call.callId;
      return undefined;
    });
    expect(execution.result?.output).toBe('timed out: TimeoutError\nafter\n');
    expect(events.filter((e) => e.event === 'tool_result').map((e) => JSON.parse(e.data))).toEqual([{ callId, timedOut: true }]);
    const late = await answer(executionId, callId, { ok: true, value: 1 });
    expect(late.status).toBe(410);
    expect(late.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it('says at once what to declare when the name was not declared, or no tools were', async () => {
    const undeclared = await stack.run('tools-undeclared', { code: 'tool.other()', tools: [{ name: 'read' }] });
    expect(undeclared.status).toBe('failed');
    expect(undeclared.result?.output).toContain(`add {"name": "other"} to the execution's "tools"`);
    const none = await stack.run('tools-undeclared', { code: 'tool.read()' });
    expect(none.result?.output).toContain('this execution declared no tools');
    const listed = await stack.run('tools-undeclared', { code: 'print(dir(tool))', tools: [{ name: 'b' }, { name: 'a' }] });
    expect(listed.result?.output).toBe("['a', 'b']\n");
  });

  it('lists pending calls on GET; answers are idempotent, a different answer is 409, unknown 404, another tenant 404, too large 413', async () => {
    const { executionId } = await stack.submit('tools-rules', { code: "print(tool.wait(n=1))", tools: [{ name: 'wait' }], timeoutMs: 30_000 });
    let pending: ToolCall[] = [];
    for (let i = 0; i < 200 && pending.length === 0; i++) {
      pending = (await stack.get(executionId)).pendingToolCalls ?? [];
      if (!pending.length) await new Promise((r) => setTimeout(r, 50));
    }
    expect(pending).toHaveLength(1);
    const { callId } = pending[0];
    expect(pending[0]).toMatchObject({ name: 'wait', args: { n: 1 } });
    const huge = await answer(executionId, callId, { ok: true, value: 'x'.repeat(1_048_577) });
    expect(huge.status).toBe(413);
    expect((await stack.get(executionId)).pendingToolCalls).toHaveLength(1);
    expect((await answer(executionId, callId, { ok: true, value: 1 }, { key: stack.otherKey })).status).toBe(404);
    expect((await answer(executionId, 'tc_unknown', { ok: true, value: 1 })).status).toBe(404);
    expect((await answer(executionId, callId, { ok: 'yes' })).status).toBe(400);
    const first = await answer(executionId, callId, { ok: true, value: { b: 2, a: 1 } }, { api: 0 });
    expect(first.status).toBe(200);
    const again = await answer(executionId, callId, { value: { a: 1, b: 2 }, ok: true });
    expect(again.status).toBe(200);
    const other = await answer(executionId, callId, { ok: true, value: 2 });
    expect(other.status).toBe(409);
    const done = await stack.settled(executionId);
    expect(done.result?.output).toBe("{'b': 2, 'a': 1}\n");
    expect(done.pendingToolCalls).toBeUndefined();
  });

  it('ends a pending call when the execution is cancelled: the cell is interrupted and the answer gets 410', async () => {
    const { executionId } = await stack.submit('tools-cancel', { code: 'tool.wait()', tools: [{ name: 'wait' }] });
    const callId = await pendingCall(stack, executionId);
    expect((await stack.request('POST', `/v1/executions/${executionId}/cancel`)).status).toBe(202);
    const done = await stack.settled(executionId);
    expect(done.status).toBe('cancelled');
    expect((await answer(executionId, callId, { ok: true, value: 1 })).status).toBe(410);
    const after = await stack.run('tools-cancel', { code: 'print("kernel fine")' });
    expect(after.result?.output).toBe('kernel fine\n');
  });

  it('shows a reconnecting client the call it has not answered, once', async () => {
    const { executionId } = await stack.submit('tools-replay', { code: "print(tool.ask(q='?'))", tools: [{ name: 'ask' }] });
    const first = await readSse(`${stack.urls[0]}/v1/executions/${executionId}/events`, stack.headers(), (events) => events.some((e) => e.event === 'tool_call'));
    const at = first.events.findIndex((e) => e.event === 'tool_call');
    const call = first.events[at];
    const lastSeen = first.events[at - 1]?.id ?? '0';
    // Reconnect from before the call: it comes again, exactly once; answer it there.
    let answered = false;
    const second = await readSse(`${stack.urls[1]}/v1/executions/${executionId}/events`, { ...stack.headers(), 'last-event-id': lastSeen }, (events) => {
      const calls = events.filter((e) => e.event === 'tool_call');
      if (calls.length && !answered) {
        answered = true;
        void answer(executionId, (JSON.parse(calls[0].data) as ToolCall).callId, { ok: true, value: 'yes' });
      }
      return false;
    });
    expect(second.events.filter((e) => e.event === 'tool_call').map((e) => e.id)).toEqual([call.id]);
    expect(second.events.at(-1)?.event).toBe('result');
    expect((JSON.parse(second.events.at(-1)!.data) as Execution).result?.output).toBe('yes\n');
  });

  it('answers wait=true with tools when the answers come on another connection', async () => {
    const body = { code: 'print(tool.add(a=2, b=3))', tools: [{ name: 'add' }] };
    const headers = { 'idempotency-key': `tools-wait-${Date.now()}` };
    const waiting = stack.request('POST', '/v1/sessions/tools-wait/executions?wait=true', body, { headers });
    // The same key and body on another connection name the execution (a 202 replay).
    let executionId = '';
    while (!executionId) {
      const replay = await stack.request('POST', '/v1/sessions/tools-wait/executions', body, { headers, url: stack.urls[1] });
      if (replay.status === 202) executionId = (replay.json as { executionId: string }).executionId;
      else await new Promise((r) => setTimeout(r, 50));
    }
    const callId = await pendingCall(stack, executionId);
    expect((await answer(executionId, callId, { ok: true, value: 5 })).status).toBe(200);
    const done = (await waiting).json as Execution;
    expect(done.status).toBe('completed');
    expect(done.result?.output).toBe('5\n');
  });

  it("keeps another session's kernel out of this execution's bridge", async () => {
    // The victim's kernel waits in a call; the attacker (another tenant) learns the victim's bridge
    // from the victim's own cell output and tries to use it.
    const { executionId } = await stack.submit('tools-victim', {
      code: [
        'k = get_ipython().kernel.get_parent("shell")["metadata"]["kernelfleet_tools"]',
        "print(k['socket'], k['token'], flush=True)",
        'print(tool.secret())',
      ].join('\n'),
      tools: [{ name: 'secret' }],
    });
    let socketPath = '';
    let token = '';
    let callId = '';
    for (let i = 0; i < 200 && !callId; i++) {
      // Output printed before a call travels another way than the call: wait for both.
      const both = (ev: SseEvent[]) => ev.some((e) => e.event === 'tool_call') && ev.some((e) => e.event === 'stdout');
      const events = await readSse(`${stack.urls[0]}/v1/executions/${executionId}/events`, stack.headers(), both, 10_000);
      const printed = events.events.filter((e) => e.event === 'stdout').map((e) => (JSON.parse(e.data) as { text: string }).text).join('');
      [socketPath, token] = printed.trim().split(' ');
      callId = (JSON.parse(events.events.find((e) => e.event === 'tool_call')?.data ?? '{}') as ToolCall).callId ?? '';
    }
    const attack = await stack.run(
      'tools-attacker',
      {
        code: [
          'import json, socket',
          'try:',
          '    s = socket.socket(socket.AF_UNIX)',
          `    s.connect(${JSON.stringify(socketPath)})`,
          `    s.sendall((json.dumps({"token": ${JSON.stringify(token)}, "name": "secret", "args": {}}) + "\\n").encode())`,
          "    print('reply:', s.recv(200))",
          'except OSError as e:',
          "    print('refused:', type(e).__name__, e.errno)",
        ].join('\n'),
      },
      { key: stack.otherKey },
    );
    const asRoot = process.getuid?.() === 0;
    expect(socketPath).toMatch(/kf-tools-/);
    // As root each kernel has a uid of its own and the socket is its kernel's alone (0600, in its HOME).
    if (asRoot) expect(attack.result?.output).toMatch(/^refused: (PermissionError|FileNotFoundError) \d+\n$/);
    else expect(attack.result?.output).toMatch(/^(reply|refused):/);
    expect((await answer(executionId, callId, { ok: true, value: 'only for the victim' })).status).toBe(200);
    expect((await stack.settled(executionId)).result?.output).toMatch(/only for the victim\n$/);
  });
});

describe('tools: a worker lost with a call pending', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ workers: 2, workerEnv: { WORKER_LEASE_MS: '2000', KERNEL_POOL_SIZE: '0' } });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('ends the execution outcome_unknown; the late answer gets 410', async () => {
    const { executionId } = await stack.submit('tools-lost', { code: 'print(tool.wait())', tools: [{ name: 'wait' }], timeoutMs: 60_000 });
    const callId = await pendingCall(stack, executionId);
    expect(callId).not.toBe('');
    const events = await readSse(`${stack.url}/v1/executions/${executionId}/events`, stack.headers(), (ev) => ev.some((e) => e.event === 'started'), 10_000);
    const runner = (JSON.parse(events.events.find((e) => e.event === 'started')!.data) as { workerId: string }).workerId;
    await stack.workers.find((w) => w.name === runner)!.stop('SIGKILL');
    const done = await stack.settled(executionId, 60_000);
    expect(done.status).toBe('outcome_unknown');
    const late = await stack.request('POST', `/v1/executions/${executionId}/tool-calls/${callId}`, { ok: true, value: 1 });
    expect(late.status).toBe(410);
  });
});
