import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelfleetClient, KernelfleetError, type ExecutionEvent, type ToolCall } from '@kernelfleet/client';
import { Stack } from '../support/stack';
import { TcpProxy } from '../support/tcp-proxy';

/**
 * @kernelfleet/client against the real api, worker and kernels: streams that survive dropped
 * connections, cancels, tool calls answered by handlers, retried 429s, refusals as errors, and
 * the built package loaded as a package.
 */

jest.setTimeout(90_000);

const ROOT = join(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LoggedRequest {
  method: string;
  path: string;
  lastEventId?: string;
  status?: number;
}

/** A fetch that logs what the client sent (method, path, Last-Event-ID) and the status it got. */
function loggingFetch(): { requests: LoggedRequest[]; fetch: typeof fetch } {
  const requests: LoggedRequest[] = [];
  const logged = (async (input: string | URL | Request, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const entry: LoggedRequest = { method: init?.method ?? 'GET', path: new URL(String(input)).pathname, lastEventId: headers['last-event-id'] };
    requests.push(entry);
    const res = await fetch(input, init);
    entry.status = res.status;
    return res;
  }) as typeof fetch;
  return { requests, fetch: logged };
}

/** Python printing `line 0` … `line n-1`, one every `pause` seconds, and the same text. */
function slowLines(n: number, pause: number): { code: string; expected: string } {
  return {
    code: `import time\nfor i in range(${n}):\n    print(f'line {i}', flush=True)\n    time.sleep(${pause})`,
    expected: Array.from({ length: n }, (_, i) => `line ${i}\n`).join(''),
  };
}

describe('@kernelfleet/client', () => {
  let stack: Stack;
  let client: KernelfleetClient;
  let proxy: TcpProxy;

  beforeAll(async () => {
    stack = await Stack.start();
    client = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    proxy = await TcpProxy.start(stack.url);
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await stack?.stop();
  });

  describe('a stream cut by the network', () => {
    it('events(): every event once, in order, seqs 1, 2, 3 … while the proxy drops every connection every 1.2 s', async () => {
      const session = 'drops-events';
      await client.executePython('warm = 1', { sessionId: session });
      const log = loggingFetch();
      const viaProxy = new KernelfleetClient({ baseUrl: proxy.url, apiKey: stack.apiKey, fetch: log.fetch });
      const { code, expected } = slowLines(120, 0.06); // about 7 s

      const handle = await viaProxy.execute(session, code, { timeoutMs: 60_000 });
      const drops: number[] = [];
      proxy.dropEvery(1_200, (cut) => drops.push(cut));
      const events: ExecutionEvent[] = [];
      try {
        for await (const event of handle.events()) events.push(event);
      } finally {
        proxy.stopDropping();
      }

      // The drops happened while the stream was open, and the client resumed after each.
      expect(drops.filter((cut) => cut > 0).length).toBeGreaterThanOrEqual(3);
      const streams = log.requests.filter((r) => r.path === `/v1/executions/${handle.id}/events`);
      const resumed = streams.filter((r) => r.lastEventId !== undefined);
      expect(resumed.length).toBeGreaterThanOrEqual(3);
      // Each resume asks for what follows the last event delivered, never an older one.
      const asked = resumed.map((r) => Number(r.lastEventId));
      expect(asked).toEqual([...asked].sort((a, b) => a - b));

      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events[0].type).toBe('queued');
      const stdout = events.flatMap((e) => (e.type === 'stdout' ? [e.data.text] : [])).join('');
      expect(stdout).toBe(expected);
      const last = events.at(-1)!;
      expect(last.type).toBe('result');
      if (last.type !== 'result') return;
      expect(last.data.status).toBe('completed');
      expect(last.data.result?.output).toBe(expected);
      expect(events.filter((e) => e.type === 'result')).toHaveLength(1);
    });

    it('executePython(): onChunk hears every line once, in order, with the connection cut at lines 15, 45, 75 and 105', async () => {
      const session = 'drops-python';
      await client.executePython('warm = 1', { sessionId: session });
      const log = loggingFetch();
      const viaProxy = new KernelfleetClient({ baseUrl: proxy.url, apiKey: stack.apiKey, fetch: log.fetch });
      const { code, expected } = slowLines(120, 0.05);
      const cutAt = [15, 45, 75, 105];
      let heard = '';
      let cuts = 0;
      const result = await viaProxy.executePython(code, {
        sessionId: session,
        timeoutMs: 60_000,
        onChunk: (text) => {
          heard += text;
          const lines = heard.split('\n').length - 1;
          // Cut whatever is open (the stream, a pooled connection) when the output passes a mark.
          if (!cutAt.length || lines < cutAt[0]) return;
          while (cutAt.length && lines >= cutAt[0]) cutAt.shift();
          if (proxy.dropAll() > 0) cuts += 1;
        },
      });

      expect(cuts).toBeGreaterThanOrEqual(3);
      expect(heard).toBe(expected);
      expect(result).toMatchObject({ output: expected, exitCode: 0, cancelled: false, truncated: false, status: 'completed', sessionId: session });
      const resumed = log.requests.filter((r) => r.path === `/v1/executions/${result.executionId}/events` && r.lastEventId !== undefined);
      expect(resumed.length).toBeGreaterThanOrEqual(cuts);
    });
  });

  it('execute() with events: the handle streams those types and the result, each with its id in the whole stream', async () => {
    const execution = await client.execute('events-picked', "import sys\nprint('out')\nprint('err', file=sys.stderr)", { events: ['stderr'] });
    const picked = [];
    for await (const event of execution.events()) picked.push(event);
    expect(picked.map((e) => e.type)).toEqual(['stderr', 'result']);
    expect(picked[0]).toMatchObject({ data: { text: 'err\n' } });
    const whole = [];
    for await (const event of (await client.attach(execution.id)).events()) whole.push(event);
    expect(picked).toEqual(whole.filter((e) => e.type === 'stderr' || e.type === 'result'));
  });

  describe('cancelling', () => {
    it('an AbortSignal cancels the running cell on the server; the kernel lives on', async () => {
      const session = 'abort-running';
      const warm = await client.executePython("kept = 'yes'", { sessionId: session });
      const controller = new AbortController();
      const result = await client.executePython("print('before', flush=True)\nimport time\ntime.sleep(30)\nprint('after')", {
        sessionId: session,
        signal: controller.signal,
        onChunk: () => controller.abort(),
      });
      expect(result).toMatchObject({ cancelled: true, exitCode: undefined, status: 'cancelled' });
      expect(result.output.startsWith('before\n')).toBe(true);
      expect(result.output).not.toMatch(/after|timed out/);

      const onServer = await client.getExecution(result.executionId!);
      expect(onServer.status).toBe('cancelled');
      expect(onServer.phase).toBe('run');
      expect(onServer.result?.cancelled).toBe(true);

      const next = await client.executePython('print(kept)', { sessionId: session });
      expect(next.output).toBe('yes\n');
      expect(next.kernel).toMatchObject({ generation: warm.kernel!.generation, restarted: false });
    });

    it('aborting events() or result() only stops following: the execution goes on', async () => {
      const handle = await client.execute('abort-follow', "import time\ntime.sleep(1.5)\nprint('finished')");
      const controller = new AbortController();
      const reason = new Error('not interested any more');
      setTimeout(() => controller.abort(reason), 300);
      await expect(handle.result({ signal: controller.signal })).rejects.toBe(reason);
      expect(['queued', 'running']).toContain((await client.getExecution(handle.id)).status);
      const done = await handle.result();
      expect(done.status).toBe('completed');
      expect(done.result?.output).toBe('finished\n');
    });

    it('cancel() on a queued execution: it never runs, the running one and those behind are unaffected', async () => {
      const session = 'cancel-queued';
      await client.executePython('warm = 1', { sessionId: session });
      const running = await client.execute(session, "import time\ntime.sleep(1.5)\nprint('running done')");
      for await (const event of running.events()) if (event.type === 'started') break;
      const queued = await client.execute(session, "never_ran = True\nprint('queued ran')");
      const behind = await client.execute(session, "print('never_ran' in globals())");

      await queued.cancel();
      const cancelled = await queued.result();
      expect(cancelled.status).toBe('cancelled');
      expect(cancelled.timings.startedAt).toBeUndefined();
      expect(cancelled.result).toMatchObject({ output: '', cancelled: true, exitCode: null });
      // Cancelling what has ended already does nothing.
      await expect(queued.cancel()).resolves.toBeUndefined();

      expect((await running.result()).result?.output).toBe('running done\n');
      const behindDone = await behind.result();
      expect(behindDone.status).toBe('completed');
      expect(behindDone.result?.output).toBe('False\n');
    });
  });

  describe('tools', () => {
    it('answers calls from 8 Python threads at once, and a handler that throws raises ToolError with its message', async () => {
      const calls: ToolCall[] = [];
      let active = 0;
      let mostActive = 0;
      const code = [
        'from concurrent.futures import ThreadPoolExecutor',
        'with ThreadPoolExecutor(8) as pool:',
        '    print(list(pool.map(lambda i: tool.double(x=i), range(8))))',
        'try:',
        "    tool.broken(path='/etc/x')",
        'except ToolError as e:',
        "    print('caught:', e)",
        'print(dir(tool))',
      ].join('\n');
      const result = await client.executePython(code, {
        sessionId: 'tools-threads',
        tools: {
          double: async (args, call) => {
            calls.push(call);
            active += 1;
            mostActive = Math.max(mostActive, active);
            await sleep(300);
            active -= 1;
            return (args.x as number) * 2;
          },
          broken: (args) => {
            throw new Error(`cannot read ${String(args.path)}`);
          },
          unused: () => 'never called',
        },
      });
      expect(result.status).toBe('completed');
      expect(result.output).toBe("[0, 2, 4, 6, 8, 10, 12, 14]\ncaught: cannot read /etc/x\n['broken', 'double', 'unused']\n");
      // Each call answered once, and the handlers ran side by side, not one after another.
      expect(calls.map((c) => c.args.x).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(new Set(calls.map((c) => c.callId)).size).toBe(8);
      expect(mostActive).toBeGreaterThan(1);
      // Without emitStatus, the tool activity is in displayOutputs as status entries.
      const statuses = result.displayOutputs.filter((d) => d.type === 'status');
      expect(statuses).toHaveLength(18);
    });

    it('result() answers tool calls without anyone iterating events()', async () => {
      const handle = await client.execute('tools-result', "print(tool.add(a=2, b=3), tool.add(a=10, b=-1))", {
        tools: { add: (args) => (args.a as number) + (args.b as number) },
      });
      const done = await handle.result();
      expect(done.status).toBe('completed');
      expect(done.result?.output).toBe('5 9\n');
      expect(handle.toolAnswerErrors).toEqual([]);
    });

    it('a handle attached without handlers only watches: the submitter’s answer reaches Python', async () => {
      const handle = await client.execute('tools-watch', "print(tool.ask(q='name?'))", {
        tools: {
          ask: async () => {
            await sleep(1_000);
            return 'from the submitter';
          },
        },
      });
      const watcher = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
      const watching = await watcher.attach(handle.id);
      const [watched, done] = await Promise.all([
        (async () => {
          const events: ExecutionEvent[] = [];
          for await (const event of watching.events()) events.push(event);
          return events;
        })(),
        handle.result(),
      ]);
      expect(done.result?.output).toBe('from the submitter\n');
      expect(watched.map((e) => e.type)).toContain('tool_call');
      expect(watched.find((e) => e.type === 'tool_result')?.data).toMatchObject({ ok: true });
    });
  });

  describe('refusals', () => {
    it('retries a 429 with its Retry-After until the quota frees up; with retries off it throws the 429', async () => {
      // A second api whose default pendingPerSession is 1 (QUOTA_* env, docs/quotas.md).
      await stack.startApi({ QUOTA_PENDING_PER_SESSION: '1' });
      const strictUrl = stack.urls.at(-1)!;
      const session = 'quota';
      await client.executePython('warm = 1', { sessionId: session });

      const log = loggingFetch();
      const patient = new KernelfleetClient({ baseUrl: strictUrl, apiKey: stack.apiKey, fetch: log.fetch, retry: { attempts: 30 } });
      const head = await patient.execute(session, "import time\ntime.sleep(3)\nprint('head done')", { timeoutMs: 30_000 });

      const impatient = new KernelfleetClient({ baseUrl: strictUrl, apiKey: stack.apiKey, retry: { attempts: 0 } });
      const refused = await impatient.execute(session, 'print(2)').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(KernelfleetError);
      expect(refused).toMatchObject({ status: 429, type: 'https://kernelfleet.dev/problems/quota-exceeded' });
      expect((refused as KernelfleetError).problem).toMatchObject({ quota: 'pendingPerSession', limit: 1 });

      const second = await patient.execute(session, "print('second')");
      // Accepted only once the head had ended, after 429s the client waited out.
      expect((await client.getExecution(head.id)).status).toBe('completed');
      const submits = log.requests.filter((r) => r.method === 'POST' && r.path === `/v1/sessions/${session}/executions`);
      expect(submits.map((r) => r.status)).toEqual([202, ...submits.slice(1, -1).map(() => 429), 202]);
      expect(submits.length).toBeGreaterThanOrEqual(3);
      expect((await second.result()).result?.output).toBe('second\n');
    });

    it('an unknown API key is a 401 KernelfleetError of type unauthorized', async () => {
      const stranger = new KernelfleetClient({ baseUrl: stack.url, apiKey: 'key-nobody-knows' });
      for (const attempt of [() => stranger.execute('s', 'print(1)'), () => stranger.executePython('print(1)', { sessionId: 's' }), () => stranger.getExecution('ex_x')]) {
        const error = await attempt().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(KernelfleetError);
        expect(error).toMatchObject({ status: 401, type: 'https://kernelfleet.dev/problems/unauthorized' });
      }
    });

    it('a bad field is a 400 KernelfleetError naming it', async () => {
      const error = (await client.execute('bad-field', 'print(1)', { timeoutMs: -1 }).catch((e: unknown) => e)) as KernelfleetError;
      expect(error).toBeInstanceOf(KernelfleetError);
      expect(error).toMatchObject({ status: 400, type: 'https://kernelfleet.dev/problems/validation', field: 'timeoutMs' });
      expect(error.message).toMatch(/timeoutMs/);
      const viaPython = await client.executePython('print(1)', { sessionId: 'bad-field', kernelOwnerId: 'has space' }).catch((e: unknown) => e);
      expect(viaPython).toMatchObject({ status: 400, field: 'ownerId' });
      expect(await client.getSession('bad-field')).toBeNull();
    });

    it('a tool name Python cannot call is refused before anything is sent', async () => {
      await expect(client.execute('bad-tool', 'print(1)', { tools: { 'not-an-identifier': () => 1 } })).rejects.toThrow(TypeError);
      expect(await client.getSession('bad-tool')).toBeNull();
    });
  });

  describe('the built package', () => {
    const pkg = join(ROOT, 'libs', 'client');
    const run = (args: string[]) =>
      execFileSync(process.execPath, args, {
        cwd: tmpdir(),
        env: { ...process.env, KF_URL: stack.url, KF_KEY: stack.apiKey },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });

    beforeAll(() => {
      if (!existsSync(join(pkg, 'dist', 'cjs', 'index.js')) || !existsSync(join(pkg, 'dist', 'esm', 'index.js'))) {
        throw new Error('libs/client/dist is missing: run `npm run build` first');
      }
    });

    it('require() of the package folder gives the CommonJS build, which runs Python', () => {
      const script = `
        const client = require(${JSON.stringify(pkg)});
        const c = new client.KernelfleetClient({ baseUrl: process.env.KF_URL, apiKey: process.env.KF_KEY });
        c.executePython('print(6 * 7)', { sessionId: 'package' }).then((r) => console.log(JSON.stringify({
          resolved: require.resolve(${JSON.stringify(pkg)}),
          exports: ['KernelfleetClient', 'KernelfleetError', 'KernelfleetConnectionError', 'ExecutionHandle', 'sessionIdForFolder'].map((n) => typeof client[n]),
          output: r.output, exitCode: r.exitCode,
        })));
      `;
      const answer = JSON.parse(run(['-e', script]));
      expect(answer).toEqual({
        resolved: join(pkg, 'dist', 'cjs', 'index.js'),
        exports: ['function', 'function', 'function', 'function', 'function'],
        output: '42\n',
        exitCode: 0,
      });
    });

    it('import() of the ES module build runs Python too', () => {
      const script = `
        const { KernelfleetClient, KernelfleetError } = await import(${JSON.stringify(`file://${join(pkg, 'dist', 'esm', 'index.js')}`)});
        const c = new KernelfleetClient({ baseUrl: process.env.KF_URL, apiKey: process.env.KF_KEY });
        const r = await c.executePython('import sys; print(sys.version_info[0])', { sessionId: 'package' });
        const refused = await new KernelfleetClient({ baseUrl: process.env.KF_URL, apiKey: 'wrong' }).getExecution('ex_1').catch((e) => e);
        console.log(JSON.stringify({ output: r.output, refused: refused instanceof KernelfleetError, status: refused.status }));
      `;
      expect(JSON.parse(run(['--input-type=module', '-e', script]))).toEqual({ output: '3\n', refused: true, status: 401 });
    });

    it('needs nothing of the server: its only imports are its own files, eventsource-parser and node: modules', () => {
      for (const flavour of ['esm', 'cjs']) {
        const dir = join(pkg, 'dist', flavour);
        const files = readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'));
        expect(files).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'client.js']));
        const specifiers = files.flatMap((f) =>
          [...readFileSync(join(dir, f), 'utf8').matchAll(/(?:from\s+|require\(|import\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1]),
        );
        const outside = specifiers.filter((s) => !s.startsWith('./') && !s.startsWith('node:') && s !== 'eventsource-parser');
        expect({ flavour, outside }).toEqual({ flavour, outside: [] });
      }
      const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
      expect(Object.keys(manifest.dependencies)).toEqual(['eventsource-parser']);
    });
  });
});
