import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ExecuteOutcome, JupyterServer, KernelClient, KernelHandle, kernelEnvironment } from '@kernelfleet/kernel';

/**
 * The kernel side of tool calls (python/kernel_site/kernelfleet_tools.py) against a stand-in
 * for the worker's tool bridge: a unix socket server that reads one JSON line per connection
 * and answers as each test says.
 */

const REPO = resolve(__dirname, '..', '..');
const PYTHON = process.env.KERNELFLEET_PYTHON ?? join(REPO, '.venv', 'bin', 'python');
const TOKEN = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

interface ToolRequest {
  token: string;
  name: string;
  args: Record<string, unknown>;
}

/** One connection that sent its request line. */
interface BridgeCall {
  request: ToolRequest;
  socket: Socket;
  /** Resolves when the kernel closes (or drops) the connection. */
  closed: Promise<void>;
  answer(reply: unknown): void;
}

/** The worker's side of the protocol, reduced to what the tests need. */
class FakeBridge {
  connections = 0;
  readonly calls: BridgeCall[] = [];
  /** Decides what to do with each call; answers with an echo unless a test says otherwise. */
  onCall: (call: BridgeCall) => void = (call) => call.answer({ ok: true, value: { name: call.request.name, args: call.request.args } });
  private readonly server: Server;

  constructor(readonly path: string) {
    this.server = createServer((socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((done, fail) => {
      this.server.once('error', fail);
      this.server.listen(this.path, () => done());
    });
  }

  close(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }

  reset(): void {
    this.connections = 0;
    this.calls.length = 0;
    this.onCall = (call) => call.answer({ ok: true, value: { name: call.request.name, args: call.request.args } });
  }

  private accept(socket: Socket): void {
    this.connections += 1;
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf(0x0a);
      if (end < 0) return;
      socket.off('data', onData);
      const request = JSON.parse(received.subarray(0, end).toString('utf8')) as ToolRequest;
      const call: BridgeCall = {
        request,
        socket,
        closed,
        answer: (reply) => {
          if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
        },
      };
      this.calls.push(call);
      this.onCall(call);
    };
    socket.on('data', onData);
  }
}

interface Run {
  outcome: ExecuteOutcome;
  stdout: string;
  stderr: string;
}

async function run(kernel: KernelHandle, code: string, metadata?: Record<string, unknown>, onChunk?: (text: string) => void): Promise<Run> {
  const result = { stdout: '', stderr: '' };
  const outcome = await kernel.execute(
    code,
    {
      onStream(name, text) {
        result[name] += text;
        onChunk?.(text);
      },
      onDisplay: () => undefined,
    },
    metadata,
  );
  return { outcome, ...result };
}

describe('tool calls from a kernel (kernel side)', () => {
  let root: string;
  let server: JupyterServer;
  let client: KernelClient;
  let kernel: KernelHandle;
  let bridge: FakeBridge;
  const serverLog: string[] = [];

  /** Metadata declaring `tools` on the fake bridge. */
  function declare(tools: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { kernelfleet_tools: { socket: bridge.path, token: TOKEN, tools, maxPending: 16, ...extra } };
  }

  beforeAll(async () => {
    jest.spyOn(console, 'debug').mockImplementation(() => undefined); // @jupyterlab/services chatter
    root = realpathSync(mkdtempSync(join(tmpdir(), 'kf-tools-int-')));
    bridge = new FakeBridge(join(root, 'bridge.sock'));
    await bridge.listen();
    server = await JupyterServer.start({ python: PYTHON, rootDir: root, env: kernelEnvironment(process.env), log: (l) => serverLog.push(l) });
    client = new KernelClient({ baseUrl: server.url, token: server.token });
    kernel = await client.startKernel({ timeoutMs: 30_000 });
  }, 60_000);

  afterEach(() => bridge.reset());

  afterAll(async () => {
    await kernel?.shutdown().catch(() => undefined);
    await server?.stop();
    await bridge?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 20_000);

  it('starts every kernel with tool, ToolError and ToolTimeoutError, silently', async () => {
    const r = await run(kernel, 'print(type(tool).__name__, ToolError.__name__, ToolTimeoutError.__name__)');
    expect(r).toEqual({ outcome: { status: 'ok' }, stdout: 'ToolProxy ToolError ToolTimeoutError\n', stderr: '' });
    expect(serverLog.join('\n')).not.toMatch(/exec_lines|kernelfleet_tools|Traceback/);
  });

  it('sends keyword, dict and tool["name"] calls as args objects and returns the JSON values', async () => {
    const extra = { unicode: 'héllo ✓ 日本語 🚀', nested: { list: [1, 2.5, null, true, false, 'x'], empty: {}, none: [] } };
    bridge.onCall = (call) => call.answer({ ok: true, value: { name: call.request.name, args: call.request.args, extra } });
    const code = [
      'import json',
      'a = tool.read(path="a.txt")',
      'b = tool.read({"path": "b.txt", "deep": {"list": [1, 2.5, None, True], "text": "héllo ✓"}})',
      'c = tool["web_search"]({"q": "x"})',
      'd = tool.read()',
      'e = tool["web_search"](q="y", limit=3)',
      'print(json.dumps([a, b, c, d, e]))',
    ].join('\n');
    const r = await run(kernel, code, declare(['web_search', 'read']));
    expect(r.outcome).toEqual({ status: 'ok' });
    const expectedArgs = [
      { name: 'read', args: { path: 'a.txt' } },
      { name: 'read', args: { path: 'b.txt', deep: { list: [1, 2.5, null, true], text: 'héllo ✓' } } },
      { name: 'web_search', args: { q: 'x' } },
      { name: 'read', args: {} },
      { name: 'web_search', args: { q: 'y', limit: 3 } },
    ];
    expect(bridge.calls.map((c) => c.request)).toEqual(expectedArgs.map((a) => ({ token: TOKEN, ...a })));
    expect(JSON.parse(r.stdout)).toEqual(expectedArgs.map((a) => ({ ...a, extra })));
    // One connection per call, each closed by the kernel after the answer.
    expect(bridge.connections).toBe(5);
    await Promise.all(bridge.calls.map((c) => c.closed));
  });

  it('returns an answer of several MiB whole', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024) + 'é';
    bridge.onCall = (call) => call.answer({ ok: true, value: { big } });
    const r = await run(kernel, 'v = tool.read()\nprint(len(v["big"]), v["big"][-2:])', declare(['read']));
    expect(r.stdout).toBe(`${3 * 1024 * 1024 + 1} xé\n`);
  });

  it('raises ToolError with the client error text, catchable in the cell', async () => {
    bridge.onCall = (call) => call.answer({ ok: false, error: 'no such file: missing.txt' });
    const code = [
      'try:',
      '    tool.read(path="missing.txt")',
      'except ToolError as e:',
      '    print("caught", type(e).__name__, e, isinstance(e, RuntimeError))',
      'tool.read(path="missing.txt")',
    ].join('\n');
    const r = await run(kernel, code, declare(['read']));
    expect(r.stdout).toBe('caught ToolError no such file: missing.txt True\n');
    expect(r.outcome).toMatchObject({ status: 'error', ename: 'ToolError', evalue: 'no such file: missing.txt' });
  });

  it('raises ToolTimeoutError for an expired call and the cell goes on', async () => {
    bridge.onCall = (call) => call.answer({ ok: false, reason: 'timeout', error: 'tool read timed out after 5 s' });
    const code = [
      'try:',
      '    tool.read()',
      'except ToolTimeoutError as e:',
      '    print("timeout:", e, isinstance(e, TimeoutError), isinstance(e, ToolError))',
      'print("went on")',
    ].join('\n');
    const r = await run(kernel, code, declare(['read']));
    expect(r.outcome).toEqual({ status: 'ok' });
    expect(r.stdout).toBe('timeout: tool read timed out after 5 s True False\nwent on\n');
  });

  it('raises ToolError when the bridge closes without an answer, answers garbage, or is gone', async () => {
    bridge.onCall = (call) => (call.request.args.mode === 'close' ? call.socket.end() : call.socket.write('not json\n'));
    const code = [
      'for mode in ("close", "garbage"):',
      '    try:',
      '        tool.read(mode=mode)',
      '    except ToolError as e:',
      '        print(mode, "->", e)',
    ].join('\n');
    const r = await run(kernel, code, declare(['read']));
    expect(r.outcome).toEqual({ status: 'ok' });
    expect(r.stdout).toMatch(/^close -> .*without an answer.*\ngarbage -> .*unreadable answer.*\n$/);

    const gone = await run(kernel, 'tool.read()', { kernelfleet_tools: { socket: join(root, 'gone.sock'), token: TOKEN, tools: ['read'], maxPending: 16 } });
    expect(gone.outcome).toMatchObject({ status: 'error', ename: 'ToolError' });
    if (gone.outcome.status !== 'error') throw new Error('unreachable');
    expect(gone.outcome.evalue).toContain('unavailable');
  });

  it('refuses undeclared names and executions without tools at once, sending nothing', async () => {
    const undeclared = await run(kernel, 'tool.nope(x=1)', declare(['read']));
    expect(undeclared.outcome).toMatchObject({ status: 'error', ename: 'ToolNotDeclaredError' });
    if (undeclared.outcome.status !== 'error') throw new Error('unreachable');
    expect(undeclared.outcome.evalue).toContain(`tool 'nope' was not declared for this execution: add {"name": "nope"} to the execution's "tools"`);

    const checks = [
      'print(hasattr(tool, "nope"), hasattr(tool, "read"))',
      'try:',
      '    tool["nope"]({})',
      'except ToolError as e:',
      '    print(type(e).__name__, isinstance(e, AttributeError))',
    ].join('\n');
    expect((await run(kernel, checks, declare(['read']))).stdout).toBe('False True\nToolNotDeclaredError True\n');

    const none = await run(kernel, 'tool.read(path="a.txt")');
    expect(none.outcome).toMatchObject({ status: 'error', ename: 'ToolNotDeclaredError' });
    if (none.outcome.status !== 'error') throw new Error('unreachable');
    expect(none.outcome.evalue).toContain('this execution declared no tools: send "tools": [{"name": ...}] with it to call tool.<name>(...)');
    // A callable kept from an execution that declared the tool is checked again at call time.
    await run(kernel, 'kept = tool.read', declare(['read']));
    const later = await run(kernel, 'kept()', declare(['web_search']));
    expect(later.outcome).toMatchObject({ status: 'error', ename: 'ToolNotDeclaredError' });
    expect(bridge.connections).toBe(0);
  });

  it('raises TypeError for arguments that are not JSON or not one dict, sending nothing', async () => {
    const cases = [
      'tool.read(s={1, 2})',
      'tool.read(b=b"x")',
      'tool.read(n=float("nan"))',
      'tool.read(o=object())',
      'tool.read({"k": float("inf")})',
      'tool.read(1)',
      'tool.read("path")',
      'tool.read({}, {})',
      'tool.read({"a": 1}, b=2)',
    ];
    const code = [
      'results = []',
      `for case in ${JSON.stringify(cases)}:`,
      '    try:',
      '        eval(case)',
      '        results.append("no error")',
      '    except TypeError as e:',
      '        results.append("TypeError")',
      'print(results)',
    ].join('\n');
    const r = await run(kernel, code, declare(['read']));
    expect(r.outcome).toEqual({ status: 'ok' });
    expect(r.stdout).toBe(`[${cases.map(() => "'TypeError'").join(', ')}]\n`);
    expect(bridge.connections).toBe(0);
  });

  it('lists the declared names in dir(tool) and repr(tool)', async () => {
    const r = await run(kernel, 'print(dir(tool))\nprint(repr(tool))', declare(['web_search', 'read']));
    const [dirLine, reprLine] = r.stdout.split('\n');
    expect(dirLine).toBe("['read', 'web_search']");
    expect(reprLine).toContain('read, web_search');
    expect((await run(kernel, 'print(dir(tool))')).stdout).toBe('[]\n');
    expect((await run(kernel, 'print(repr(tool))')).stdout).toContain('declared none');
    // Names starting with "_" are ordinary attributes: copy and pickle never call tools.
    const plain = await run(kernel, 'import copy\nprint(copy.copy(tool) is not None, hasattr(tool, "_repr_html_"))', declare(['read']));
    expect(plain.stdout).toBe('True False\n');
    expect(bridge.connections).toBe(0);
  });

  it('answers five threads calling at once, each with its own value', async () => {
    bridge.onCall = () => {
      if (bridge.calls.length < 5) return;
      // All five requests arrived before any answer: answer them in reverse order.
      for (const call of [...bridge.calls].reverse()) call.answer({ ok: true, value: { i: call.request.args.i, seen: bridge.calls.length } });
    };
    const code = [
      'import json, threading',
      'results = {}',
      'def worker(i):',
      '    results[i] = tool.read(i=i)',
      'threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]',
      'for t in threads: t.start()',
      'for t in threads: t.join()',
      'print(json.dumps([results[i] for i in range(5)]))',
    ].join('\n');
    const r = await run(kernel, code, declare(['read']));
    expect(r.outcome).toEqual({ status: 'ok' });
    expect(JSON.parse(r.stdout)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i, seen: 5 })));
    expect(bridge.connections).toBe(5);
  });

  it('keeps at most maxPending calls in flight; the others wait in the kernel', async () => {
    // Counted by answers, not by open sockets: Node may see the next connection before the
    // previous one's close.
    let answered = 0;
    let mostUnanswered = 0;
    bridge.onCall = (call) => {
      mostUnanswered = Math.max(mostUnanswered, bridge.calls.length - answered);
      setTimeout(() => {
        answered += 1;
        call.answer({ ok: true, value: call.request.args.i });
      }, 100);
    };
    const code = [
      'import threading',
      'results = {}',
      'def worker(i):',
      '    results[i] = tool.read(i=i)',
      'threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]',
      'for t in threads: t.start()',
      'for t in threads: t.join()',
      'print(sorted(results.values()))',
    ].join('\n');
    const r = await run(kernel, code, declare(['read'], { maxPending: 2 }));
    expect(r.stdout).toBe('[0, 1, 2, 3, 4, 5]\n');
    expect(bridge.connections).toBe(6);
    expect(mostUnanswered).toBe(2);
  });

  it('ends a call that is never answered with KeyboardInterrupt on interrupt; the kernel stays usable', async () => {
    let interruptedAt = 0;
    bridge.onCall = () => {
      interruptedAt = Date.now();
      void kernel.interrupt();
    };
    const r = await run(kernel, 'kept = "yes"\ntool.read(path="slow")', declare(['read'], { maxPending: 1 }));
    expect(r.outcome).toMatchObject({ status: 'error', ename: 'KeyboardInterrupt' });
    expect(Date.now() - interruptedAt).toBeLessThan(2_000);
    await bridge.calls[0].closed; // the kernel hung up

    // The slot (maxPending 1, same token) was given back: the next call goes through.
    bridge.onCall = (call) => call.answer({ ok: true, value: 'after' });
    const after = await run(kernel, 'print(kept, tool.read())', declare(['read'], { maxPending: 1 }));
    expect(after).toEqual({ outcome: { status: 'ok' }, stdout: 'yes after\n', stderr: '' });
  });

  it('has tool in a new kernel without any import', async () => {
    const fresh = await client.startKernel({ timeoutMs: 30_000 });
    try {
      const r = await run(fresh, 'print(tool.read(path="x"), ToolError.__name__, ToolTimeoutError.__name__)', declare(['read']));
      expect(r).toEqual({ outcome: { status: 'ok' }, stdout: "{'name': 'read', 'args': {'path': 'x'}} ToolError ToolTimeoutError\n", stderr: '' });
    } finally {
      await fresh.shutdown();
    }
  }, 60_000);
});
