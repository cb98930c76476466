import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRedis, freePort } from '../support/redis-server';
import { Stack } from '../support/stack';

/**
 * DESIGN invariant 13: code in a kernel cannot connect to any service of the host it runs on and
 * shares no writable place with other sessions. As root (CI, containers) the worker walls its
 * kernels off and proves it at start; otherwise its start-up line says plainly that kernels can
 * reach local services, and only a Redis with a password lets it start.
 */
const asRoot = process.getuid?.() === 0;

/** Python that tries each [name, host, port] and prints one JSON object: name → "connected" or the error's name. */
function probeCode(targets: [string, string, number][]): string {
  return [
    'import json, socket',
    'seen = {}',
    `for name, host, port in ${JSON.stringify(targets)}:`,
    '    try:',
    '        socket.create_connection((host, port), timeout=3).close()',
    "        seen[name] = 'connected'",
    '    except OSError as error:',
    '        seen[name] = type(error).__name__',
    'print(json.dumps(seen))',
  ].join('\n');
}

/** A listener on every address of the host (IPv6 and IPv4), as a service bound to 0.0.0.0 would be. */
function listen(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end('hello from the host\n');
    });
    server.listen(0, '::', () => resolve(server));
  });
}

/** The host's own addresses on its network interfaces (not loopback, not link-local). */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal && !a.address.startsWith('fe80:'))
    .map((a) => a!.address);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 3_000 }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const portOf = (server: Server) => (server.address() as { port: number }).port;
const wallsTable = () => {
  try {
    execFileSync('nft', ['list', 'table', 'inet', 'kernelfleet_walls'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** The workers' default KERNEL_SANDBOX_DIR: the uid locks and kernel homes of every worker of this host. */
const sandboxDir = join(tmpdir(), 'kernelfleet-sandbox');

describe('kernels are walled off from the host', () => {
  let stack: Stack;
  let bystander: Server;
  let targets: [string, string, number][];

  beforeAll(async () => {
    bystander = await listen();
    stack = await Stack.start({ workers: 2, workerEnv: { KERNEL_POOL_SIZE: '1' } });
    const worker = stack.workers[0];
    const redis = new URL(process.env.KF_TEST_REDIS_URL!.replace(/^redis\+cluster:\/\/([^,]*).*$/, 'redis://$1'));
    const hostPort = (url: string): [string, number] => [new URL(url).hostname, Number(new URL(url).port)];
    targets = [
      ['redis', '127.0.0.1', Number(redis.port)],
      ['jupyter', ...hostPort(/started Jupyter server pid \d+ at (http:\/\/127\.0\.0\.1:\d+)/.exec(worker.output)![1])],
      ['metrics', ...hostPort(worker.metricsUrl!)],
      ['api', ...hostPort(stack.url)],
      ['listener', '127.0.0.1', portOf(bystander)],
      ['listener-ipv6', '::1', portOf(bystander)],
      ...hostAddresses().map((address): [string, string, number] => [`listener-at-${address}`, address, portOf(bystander)]),
    ];
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    bystander?.close();
  });

  const reach = async (sessionId: string, extra: Record<string, unknown> = {}) => {
    const r = await stack.run(sessionId, { code: probeCode(targets), ...extra });
    expect({ status: r.status, output: r.result?.output }).toMatchObject({ status: 'completed' });
    return JSON.parse(r.result!.output) as Record<string, string>;
  };
  const refusedEverywhere = () => Object.fromEntries(targets.map(([name]) => [name, 'ConnectionRefusedError']));

  if (asRoot) {
    it('says at start that kernels reach no service of the host, as a kernel checked', () => {
      for (const worker of stack.workers) expect(worker.output).toMatch(/kernels reach no service of this host .*checked as uid \d+/);
    });

    it("refuses a kernel's connections to Redis, the Jupyter server, metrics, the api and any listener of the host", async () => {
      // The test itself reaches them all: they are up, and only the kernel is kept off them.
      expect(targets.length).toBeGreaterThanOrEqual(6);
      for (const [name, host, port] of targets) expect([name, await canConnect(host, port)]).toEqual([name, true]);
      expect(await reach('walls-session')).toEqual(refusedEverywhere());
    });

    it('refuses them in per-call mode and after a reset too', async () => {
      expect(await reach('walls-per-call', { kernelMode: 'per-call' })).toEqual(refusedEverywhere());
      await stack.run('walls-reset', { code: 'x = 1' });
      expect(await reach('walls-reset', { reset: true })).toEqual(refusedEverywhere());
    });

    it("keeps each kernel's /tmp, /var/tmp and /dev/shm its own, and removes them with the kernel", async () => {
      const planted = `planted-by-b-${Date.now()}`;
      const plant = await stack.run(
        'walls-planter',
        {
          code: [
            'import os',
            "for place in ('/tmp', '/var/tmp', '/dev/shm'):",
            `    path = os.path.join(place, '${planted}')`,
            "    open(path, 'w').write('b was here')",
            '    os.chmod(path, 0o666)',
            'print(os.getuid())',
          ].join('\n'),
        },
        { key: stack.otherKey },
      );
      expect(plant.status).toBe('completed');
      const plantersUid = plant.result!.output.trim();
      const look = await stack.run('walls-reader', {
        code: `import os\nprint([os.path.exists(os.path.join(p, '${planted}')) for p in ('/tmp', '/var/tmp', '/dev/shm')], os.listdir('/dev/shm'))`,
      });
      expect(look.result?.output).toBe('[False, False, False] []\n');
      // Nor does the host see them; and once the planter's session is gone, nothing of it is left.
      for (const place of ['/tmp', '/var/tmp', '/dev/shm']) expect(existsSync(join(place, planted))).toBe(false);
      expect(existsSync(join(sandboxDir, 'home', plantersUid))).toBe(true);
      const res = await stack.request('DELETE', `/v1/sessions/walls-planter`, undefined, { key: stack.otherKey });
      expect(res.status).toBeLessThan(300);
      const until = Date.now() + 20_000;
      while (existsSync(join(sandboxDir, 'home', plantersUid)) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(join(sandboxDir, 'home', plantersUid))).toBe(false);
    });

    it("shows a kernel only its own processes, not other tenants' command lines", async () => {
      const r = await stack.run('walls-ps', { code: "import os\nprint(sorted({os.stat(f'/proc/{p}').st_uid for p in os.listdir('/proc') if p.isdigit()}) == [os.getuid()])" });
      expect(r.result?.output).toBe('True\n');
    });

    it('keeps the walls while one of the host’s workers stops, and removes them with the last', async () => {
      await stack.workers[0].stop();
      expect(wallsTable()).toBe(true);
      expect(await reach('walls-after-one-left')).toEqual(refusedEverywhere());
      await stack.workers[1].stop();
      expect(wallsTable()).toBe(false);
    });
  }
});

/** A redis-server without a password, as a careless setup would run one. */
async function openRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const child = await TestRedis.spawnReadyAt(process.env.REDIS_SERVER_BIN ?? 'redis-server', url, ['--port', String(port), '--bind', '127.0.0.1', '--save', '']);
  return { url, child };
}

describe('kernels that are not walled off (not root, or KERNEL_SANDBOX=limits)', () => {
  let stack: Stack;
  let open: { url: string; child: ChildProcess };

  beforeAll(async () => {
    open = await openRedis();
    stack = await Stack.start({ workers: 0 });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    open?.child.kill('SIGKILL');
  });

  it('refuses to start on a Redis without a password, saying why', async () => {
    const started = stack.startWorker({ REDIS_URL: open.url, KERNEL_SANDBOX: 'limits' });
    await expect(started).rejects.toThrow(/kernels can reach this worker's Redis, and it serves clients without a password/);
  });

  it('starts on a Redis with a password, says plainly that kernels reach local services, and its kernels get NOAUTH', async () => {
    const worker = await stack.startWorker({ KERNEL_SANDBOX: 'limits', KERNEL_POOL_SIZE: '0' });
    expect(worker.output).toMatch(/kernels can reach this host's services \(Redis, the Jupyter server, metrics, anything on loopback\) and share \/tmp/);
    const port = new URL(process.env.KF_TEST_REDIS_URL!.replace(/^redis\+cluster:\/\/([^,]*).*$/, 'redis://$1')).port;
    const r = await stack.run('unwalled', {
      code: `import socket\ns = socket.create_connection(('127.0.0.1', ${port}), timeout=5)\ns.sendall(b'KEYS *\\r\\n')\nprint(s.recv(64).decode().split()[0])`,
    });
    expect(r.result?.output).toBe('-NOAUTH\n');
  });

  it('starts on a Redis without a password only when told it is a single-tenant development setup', async () => {
    const worker = await stack.startWorker({ REDIS_URL: open.url, KERNEL_SANDBOX: 'limits', SINGLE_TENANT_DEV: 'true', KERNEL_POOL_SIZE: '0' });
    expect(worker.output).toMatch(/SINGLE_TENANT_DEV: kernels can reach this worker's Redis, and it serves clients without a password/);
    await worker.stop();
  });
});

if (asRoot) {
  describe('KERNEL_NETWORK=none', () => {
    let stack: Stack;

    beforeAll(async () => {
      stack = await Stack.start({ workerEnv: { KERNEL_NETWORK: 'none', KERNEL_POOL_SIZE: '0' } });
    }, 120_000);

    afterAll(async () => {
      await stack?.stop();
    });

    it('refuses every new connection at once, public addresses and DNS included', async () => {
      // 198.51.100.0/24 is a documentation range: refused here before any packet leaves the machine.
      const r = await stack.run('walls-none', {
        code: [
          'import socket, time',
          'began = time.monotonic()',
          'seen = []',
          'for call in (lambda: socket.create_connection(("198.51.100.7", 443), timeout=5),',
          '             lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("198.51.100.7", 53))):',
          '    try:',
          '        call()',
          '        seen.append("sent")',
          '    except OSError as error:',
          '        seen.append(type(error).__name__)',
          'print(seen, time.monotonic() - began < 2)',
        ].join('\n'),
      });
      expect(r.result?.output).toBe("['ConnectionRefusedError', 'PermissionError'] True\n");
    });

    it('refuses a worker of the same host that wants other network settings', async () => {
      const other = stack.startWorker({ KERNEL_NETWORK: 'public' });
      await expect(other).rejects.toThrow(/other kernel network settings/);
    });
  });
}
