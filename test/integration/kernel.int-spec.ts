import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DisplayOutput } from '@kernelfleet/contracts';
import {
  ExecuteOutcome,
  JupyterServer,
  KernelClient,
  KernelDiedError,
  KernelHandle,
  KernelStartTimeoutError,
  kernelEnvironment,
} from '@kernelfleet/kernel';

const REPO = resolve(__dirname, '..', '..');
const PYTHON = process.env.KERNELFLEET_PYTHON ?? join(REPO, '.venv', 'bin', 'python');
const SECRET = 'KF_SECRET_TOKEN';

interface Run {
  outcome: ExecuteOutcome;
  stdout: string;
  stderr: string;
  chunks: string[];
  displays: DisplayOutput[];
}

async function run(kernel: KernelHandle, code: string, onChunk?: (text: string) => void): Promise<Run> {
  const result = { stdout: '', stderr: '', chunks: [] as string[], displays: [] as DisplayOutput[] };
  const outcome = await kernel.execute(code, {
    onStream(name, text) {
      result[name] += text;
      if (name === 'stdout') result.chunks.push(text);
      onChunk?.(text);
    },
    onDisplay(out) {
      result.displays.push(out);
    },
  });
  return { outcome, ...result };
}

async function kernelCount(server: JupyterServer): Promise<number> {
  const response = await fetch(`${server.url}/api/kernels`, { headers: { Authorization: `token ${server.token}` } });
  return ((await response.json()) as unknown[]).length;
}

describe('kernel library against a real Jupyter server', () => {
  let root: string;
  let server: JupyterServer;
  let client: KernelClient;
  let kernel: KernelHandle;
  const serverLog: string[] = [];

  beforeAll(async () => {
    jest.spyOn(console, 'debug').mockImplementation(() => undefined); // @jupyterlab/services chatter
    process.env[SECRET] = 'must-not-reach-the-kernel';
    root = realpathSync(mkdtempSync(join(tmpdir(), 'kf-kernel-int-')));
    server = await JupyterServer.start({ python: PYTHON, rootDir: root, env: kernelEnvironment(process.env), log: (l) => serverLog.push(l) });
    client = new KernelClient({ baseUrl: server.url, token: server.token });
    kernel = await client.startKernel({ cwd: 'sessions/s-1', timeoutMs: 30_000 });
  }, 60_000);

  afterAll(async () => {
    delete process.env[SECRET];
    await kernel?.shutdown().catch(() => undefined);
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 20_000);

  it('streams stdout in several chunks while a loop sleeps', async () => {
    // ipykernel flushes stdout every 0.2 s, so 0.25 s sleeps separate the prints.
    const arrivals: number[] = [];
    const r = await run(kernel, 'import time\nfor i in range(4):\n    print(i)\n    time.sleep(0.25)', () => arrivals.push(Date.now()));
    const finished = Date.now();
    expect(r.outcome).toEqual({ status: 'ok' });
    expect(r.stdout).toBe('0\n1\n2\n3\n');
    expect(r.chunks.length).toBeGreaterThanOrEqual(3);
    expect(finished - arrivals[0]).toBeGreaterThanOrEqual(500);
  });

  it('keeps globals between executions and returns execute_result text', async () => {
    expect((await run(kernel, 'x = 41')).outcome).toEqual({ status: 'ok' });
    const r = await run(kernel, 'x + 1');
    expect(r.displays).toEqual([{ type: 'text', text: '42\n', markdown: false }]);
  });

  it('supports top-level await', async () => {
    const r = await run(kernel, 'import asyncio\nawait asyncio.sleep(0.01)\nprint("slept")');
    expect(r.outcome).toEqual({ status: 'ok' });
    expect(r.stdout).toBe('slept\n');
  });

  it('reports exceptions through the outcome, not through stderr', async () => {
    const r = await run(kernel, 'raise ValueError("boom")');
    expect(r.outcome).toMatchObject({ status: 'error', ename: 'ValueError', evalue: 'boom' });
    if (r.outcome.status !== 'error') throw new Error('unreachable');
    expect(r.outcome.traceback.join('\n')).toContain('ValueError');
    expect(r.stderr).toBe('');
  });

  it('maps input() to stdin and stays usable', async () => {
    expect((await run(kernel, 'name = input("who? ")')).outcome).toEqual({ status: 'stdin' });
    expect((await run(kernel, 'print(x)')).stdout).toBe('41\n');
  });

  it('interrupts a long sleep quickly and keeps globals', async () => {
    await run(kernel, 'kept = "yes"');
    let interruptedAt = 0;
    const r = await run(kernel, 'import time\nprint("sleeping", flush=True)\ntime.sleep(30)', () => {
      interruptedAt = Date.now();
      void kernel.interrupt();
    });
    expect(Date.now() - interruptedAt).toBeLessThan(2_000);
    expect(r.outcome).toMatchObject({ status: 'error', ename: 'KeyboardInterrupt' });
    expect((await run(kernel, 'print(kept)')).stdout).toBe('yes\n');
  });

  it('sends a matplotlib figure as an image/png display output', async () => {
    const r = await run(kernel, 'import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title("t")');
    expect(r.outcome).toEqual({ status: 'ok' });
    const images = r.displays.filter((d) => d.type === 'image');
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ mimeType: 'image/png' });
    expect(Buffer.from((images[0] as { data: string }).data, 'base64').subarray(1, 4).toString()).toBe('PNG');
  }, 60_000);

  it('gives the kernel only the allowlisted environment', async () => {
    const r = await run(kernel, 'import os, json\nprint(json.dumps(dict(os.environ)))');
    const env = JSON.parse(r.stdout) as Record<string, string>;
    expect(env).not.toHaveProperty(SECRET);
    expect(env.PYTHONUNBUFFERED).toBe('1');
    expect(r.stdout).not.toContain(server.token);
  });

  it('delivers 10 MB of stdout completely', async () => {
    let bytes = 0;
    const outcome = await kernel.execute('for _ in range(10_000):\n    print("x" * 1000)', {
      onStream: (_name, text) => (bytes += Buffer.byteLength(text)),
      onDisplay: () => undefined,
    });
    expect(outcome).toEqual({ status: 'ok' });
    expect(bytes).toBe(10_010_000);
  }, 60_000);

  it('starts the kernel in the requested directory under root_dir', async () => {
    const r = await run(kernel, 'import os\nprint(os.getcwd())');
    expect(r.stdout.trim()).toBe(join(root, 'sessions', 's-1'));
  });

  it('starts kernels at once in one new folder without tripping over each other', async () => {
    const kernels = await Promise.all(Array.from({ length: 4 }, () => client.startKernel({ cwd: 'racing/tenant/s-2', timeoutMs: 30_000 })));
    try {
      for (const k of kernels) expect((await run(k, 'import os\nprint(os.getcwd())')).stdout.trim()).toBe(join(root, 'racing', 'tenant', 's-2'));
    } finally {
      await Promise.all(kernels.map((k) => k.shutdown().catch(() => undefined)));
    }
  }, 60_000);

  it('rejects an execution with KernelDiedError promptly when the kernel exits', async () => {
    const doomed = await client.startKernel({ timeoutMs: 30_000 });
    await run(doomed, 'import os');
    const started = Date.now();
    await expect(run(doomed, 'os._exit(1)')).rejects.toBeInstanceOf(KernelDiedError);
    expect(Date.now() - started).toBeLessThan(3_000);
    await expect(doomed.dead).resolves.toBeInstanceOf(KernelDiedError);
    expect(await doomed.isAlive()).toBe(false);
    await expect(run(doomed, '1')).rejects.toBeInstanceOf(KernelDiedError);
    await doomed.shutdown();
    expect((await run(kernel, 'print(x)')).stdout).toBe('41\n');
  });

  it('times out a start that cannot finish and leaves no kernel behind', async () => {
    const before = await kernelCount(server);
    await expect(client.startKernel({ timeoutMs: 5 })).rejects.toBeInstanceOf(KernelStartTimeoutError);
    // The POST is not cancelled; the kernel it creates must be shut down once it exists.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await kernelCount(server)).toBe(before);
  });

  it('shuts a kernel down idempotently', async () => {
    const extra = await client.startKernel({ timeoutMs: 30_000 });
    expect(await extra.isAlive()).toBe(true);
    await Promise.all([extra.shutdown(), extra.shutdown()]);
    expect(await extra.isAlive()).toBe(false);
  });
});

/**
 * Kernels that die while starting, as when two Jupyter servers on one host hand out the same
 * port: kernel specs of a server of their own (JUPYTER_PATH) whose kernels exit at once.
 */
describe('kernel starts that die', () => {
  let specs: string;
  let server: JupyterServer;
  const retries: string[] = [];
  let client: KernelClient;

  /** A kernel spec named `name` that runs `script` with the connection file. */
  function kernelSpec(name: string, script: string) {
    const dir = join(specs, 'kernels', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'launch.py'), script);
    const spec = { argv: [PYTHON, join(dir, 'launch.py'), '{connection_file}'], display_name: name, language: 'python' };
    writeFileSync(join(dir, 'kernel.json'), JSON.stringify(spec));
  }

  beforeAll(async () => {
    jest.spyOn(console, 'debug').mockImplementation(() => undefined);
    specs = realpathSync(mkdtempSync(join(tmpdir(), 'kf-kernel-specs-')));
    kernelSpec('always-dies', 'import sys\nsys.exit(3)\n');
    // Dies whenever it is the first kernel this spec launched (restarts included), then runs ipykernel.
    kernelSpec(
      'first-dies',
      [
        'import os, runpy, sys',
        "marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'first-kernel')",
        'kernel = os.path.basename(sys.argv[1])',
        'try:',
        '    with open(marker, "x") as f: f.write(kernel)',
        'except FileExistsError:',
        '    pass',
        'if open(marker).read() == kernel: sys.exit(3)',
        "sys.argv = ['ipykernel_launcher', '-f', sys.argv[1]]",
        "runpy.run_module('ipykernel_launcher', run_name='__main__')",
        '',
      ].join('\n'),
    );
    const env = { ...kernelEnvironment(process.env), JUPYTER_PATH: specs };
    server = await JupyterServer.start({ python: PYTHON, rootDir: join(specs, 'root'), env });
    client = new KernelClient({ baseUrl: server.url, token: server.token }, { onStartRetry: (error) => retries.push(error.message) });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    if (specs) rmSync(specs, { recursive: true, force: true });
  }, 20_000);

  it('replaces a kernel that died while starting, within the same budget', async () => {
    const kernel = await client.startKernel({ kernelName: 'first-dies', timeoutMs: 60_000 });
    try {
      expect((await run(kernel, 'print(6 * 7)')).stdout).toBe('42\n');
      expect(retries).toHaveLength(1);
      expect(retries[0]).toMatch(/while (starting|it started)/);
      expect(await kernelCount(server)).toBe(1);
    } finally {
      await kernel.shutdown();
    }
  }, 90_000);

  it('gives up on a kernel that keeps dying long before the budget runs out, leaving none behind', async () => {
    const started = Date.now();
    await expect(client.startKernel({ kernelName: 'always-dies', timeoutMs: 120_000 })).rejects.toBeInstanceOf(KernelDiedError);
    expect(Date.now() - started).toBeLessThan(60_000);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await kernelCount(server)).toBe(0);
  }, 150_000);
});
