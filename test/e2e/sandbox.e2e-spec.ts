import { Stack } from '../support/stack';
import { TestRedis } from '../support/redis-server';

/**
 * Hostile code in a kernel is contained: the worker and other sessions go on, and the result
 * says what happened. As root (CI, containers) every kernel also runs as a uid of its own; the
 * tests check that wherever the worker runs as root.
 */
const asRoot = process.getuid?.() === 0;

describe('kernels as a sandbox', () => {
  let password: string;
  let redis: TestRedis;
  let stack: Stack;
  let bystanderGeneration: number;
  let url: string;

  beforeAll(async () => {
    // The test Redis takes its password on stdin: it is on no command line a kernel could read.
    redis = await TestRedis.start();
    password = redis.password;
    url = redis.url;
    stack = await Stack.start({
      apiEnv: { REDIS_URL: url },
      workerEnv: { REDIS_URL: url, KERNEL_POOL_SIZE: '0', KERNEL_MEMORY_MB: '2048', KERNEL_MAX_PROCESSES: '64', KERNEL_MAX_FILE_MB: '16', INTERRUPT_GRACE_MS: '2000' },
    });
    const bystander = await stack.run('bystander', { code: 'x = 42' });
    expect(bystander.status).toBe('completed');
    bystanderGeneration = bystander.kernel!.generation;
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    await redis?.stop();
  });

  afterEach(async () => {
    // Whatever a test did, the other session on the same worker kept its kernel and its state.
    const check = await stack.run('bystander', { code: 'print(x)' });
    expect(check.result?.output).toBe('42\n');
    expect(check.kernel?.generation).toBe(bystanderGeneration);
  });

  it('gives the kernel no secret of the worker in its environment', async () => {
    // One variable a line: the output sink caps lines at 768 bytes.
    const r = await stack.run('env', { code: 'import json, os\nfor item in os.environ.items():\n    print(json.dumps(item))' });
    const lines = r.result!.output.trim().split('\n');
    const env = Object.fromEntries(lines.map((line) => JSON.parse(line) as [string, string]));
    expect(env.PATH).toBeDefined();
    expect(Object.keys(env).filter((k) => /REDIS|API_KEY|TOKEN|ADMIN|KEY_PREFIX/.test(k))).toEqual([]);
    expect(Object.values(env).filter((v) => v.includes(password) || v.includes(stack.apiKey))).toEqual([]);
  });

  it('runs each kernel as a user of its own when the worker is root, or says why not', async () => {
    const r = await stack.run('whoami', { code: 'import os\nprint(os.getuid())' });
    const uid = Number(r.result!.output);
    if (asRoot) {
      expect(uid).toBeGreaterThanOrEqual(2_000_000_000);
      expect(stack.workers[0].output).toMatch(/kernels run as uids \d+\.\.\d+, each its own/);
    } else {
      expect(uid).toBe(process.getuid?.());
      expect(stack.workers[0].output).toMatch(/kernels run as the worker's user \(the worker is not root\)/);
    }
  });

  it("keeps the worker's Redis credentials out of reach of user code", async () => {
    const code = [
      'import os, socket',
      `secret = bytes.fromhex("${Buffer.from(password).toString('hex')}")`,
      'seen = []',
      "for pid in filter(str.isdigit, os.listdir('/proc')):",
      "    for name in ('environ', 'cmdline'):",
      '        try:',
      "            with open(f'/proc/{pid}/{name}', 'rb') as f:",
      '                if secret in f.read(): seen.append(name)',
      '        except OSError:',
      '            pass',
      'try:',
      `    s = socket.create_connection(('127.0.0.1', ${new URL(url).port}), timeout=5)`,
      "    s.sendall(b'PING\\r\\n')",
      '    answer = s.recv(64).decode().split()[0]',
      'except ConnectionRefusedError:',
      "    answer = 'refused'",
      'print(sorted(set(seen)), answer)',
    ].join('\n');
    const r = await stack.run('snoop', { code });
    expect(r.status).toBe('completed');
    // As the worker's own user a kernel could read the worker's environment, and reach Redis
    // (which then answers NOAUTH): only root can prevent both (kernel-walls.e2e-spec.ts).
    if (asRoot) expect(r.result?.output).toBe('[] refused\n');
    else expect(r.result?.output).toMatch(/-NOAUTH\n$/);
  });

  it('gives each session a working folder of its own that other sessions cannot enter', async () => {
    const a = await stack.run('folder-a', { code: "import os\nopen('mine.txt', 'w').write('a')\nprint(os.getcwd())" });
    const b = await stack.run('folder-b', { code: 'import os\nprint(os.getcwd())' });
    const folderA = a.result!.output.trim();
    expect(folderA).not.toBe(b.result!.output.trim());
    expect(folderA).toMatch(/folder-a$/);
    const peek = await stack.run('folder-b', { code: `import os\nprint(open(os.path.join(${JSON.stringify(folderA)}, 'mine.txt')).read())` });
    if (asRoot) {
      expect(peek.status).toBe('failed');
      expect(peek.result?.output).toContain('PermissionError');
    } else {
      expect(peek.status).toBe('completed');
    }
  });

  it("lets a per-call execution work in the session's folder, and the session kernel after it", async () => {
    await stack.run('shared-folder', { code: "open('from-session.txt', 'w').write('s')" });
    const perCall = await stack.run('shared-folder', {
      code: "print(open('from-session.txt').read())\n_ = open('from-per-call.txt', 'w').write('p')",
      kernelMode: 'per-call',
    });
    expect(perCall.result?.output).toBe('s\n');
    const after = await stack.run('shared-folder', {
      code: "open('from-per-call.txt', 'a').write('+s')\nprint(open('from-per-call.txt').read())",
    });
    expect(after.status).toBe('completed');
    expect(after.result?.output).toBe('p+s\n');
  });

  it('turns an allocation of 20 GB into a MemoryError and keeps the kernel', async () => {
    await stack.run('greedy', { code: 'y = 7' });
    const r = await stack.run('greedy', { code: 'big = bytearray(20 * 1024**3)' });
    expect(r.status).toBe('failed');
    expect(r.result?.output).toContain('MemoryError');
    const after = await stack.run('greedy', { code: 'print(y)' });
    expect(after.result?.output).toBe('7\n');
    expect(after.kernel?.generation).toBe(r.kernel?.generation);
  });

  it('refuses a file larger than the file-size limit', async () => {
    const r = await stack.run('writer', { code: "open('big.bin', 'wb').write(b'0' * (32 * 1024 * 1024))" });
    expect(r.status).toBe('failed');
    expect(r.result?.output).toMatch(/File too large/);
  });

  it('stops a fork bomb at the deadline and leaves no process of it behind', async () => {
    const bomb = 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass';
    const r = await stack.run('bomb', { code: bomb, timeoutMs: 3_000 });
    expect(r.status).toBe('timed_out');
    expect(r.result?.output).toMatch(/interrupted|killed/i);
    // Live processes only: when the kernel takes the interrupt in time (it is not killed), the
    // forks it made itself stay zombies until its own code waits for them, as on any Linux.
    const live = 'import psutil\nprint(len([p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]))';
    const left = await stack.run('bomb', { code: live });
    expect(left.status).toBe('completed');
    expect(left.result?.output).toBe('0\n');
  });

  it("contains a kernel that kills its parent: one session's kernel at most", async () => {
    await stack.run('parricide', { code: 'z = 1' });
    const r = await stack.run('parricide', { code: 'import os\nos.kill(os.getppid(), 9)\nimport time\ntime.sleep(5)' });
    if (asRoot) {
      expect(r.status).toBe('failed');
      expect(r.result?.output).toContain('PermissionError');
    } else {
      expect(r.status).toBe('outcome_unknown');
    }
    const after = await stack.run('parricide', { code: "print('z' in globals())" });
    expect(after.status).toBe('completed');
  });

  it('interrupts a busy loop at its deadline and keeps the session', async () => {
    await stack.run('spin', { code: 'w = 5' });
    const r = await stack.run('spin', { code: 'while True:\n    pass', timeoutMs: 2_000 });
    expect(r.status).toBe('timed_out');
    expect(r.result?.output).toMatch(/interrupted/i);
    const after = await stack.run('spin', { code: 'print(w)' });
    expect(after.result?.output).toBe('5\n');
  });

  it('bounds output printed without end and stops it at the deadline', async () => {
    const r = await stack.run('chatty', { code: "while True:\n    print('y' * 100)", timeoutMs: 3_000 });
    expect(r.status).toBe('timed_out');
    expect(r.result?.truncated).toBe(true);
    expect(r.result!.outputBytes).toBeLessThanOrEqual(72 * 1024);
    expect(r.result!.totalBytes).toBeGreaterThan(r.result!.outputBytes);
  });
});
