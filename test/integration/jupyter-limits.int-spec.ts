import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(__dirname, '..', '..');
const PYTHON = process.env.KERNELFLEET_PYTHON ?? join(REPO, '.venv', 'bin', 'python');

/**
 * How many kernels one Jupyter server can hold: a worker is meant to hold hundreds of idle
 * sessions (docs/benchmarks.md, "Kernel density"). With libzmq's default of 1023 sockets in
 * the kernel manager's one context, the 171st kernel's start failed (HTTP 500).
 */
describe('the Jupyter launcher makes room for hundreds of kernels', () => {
  let root: string;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kf-limits-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("raises the kernel manager's ZMQ socket limit from 1023 to libzmq's own, and the open-files soft limit to the hard one", () => {
    // The launcher's own setup, on a server app that is initialised but not started, from a soft
    // open-files limit of 1024 (a common default).
    const script = `
import json, resource, sys, zmq
sys.path.insert(0, ${JSON.stringify(join(REPO, 'python'))})
import kernelfleet_jupyter as launcher
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
app = launcher.KernelfleetServerApp.instance(config=launcher.build_config({"port": 0, "root_dir": ${JSON.stringify(root)}, "token": "t"}))
app.initialize(argv=[], find_extensions=False)
context = app.kernel_manager.context
before = context.get(zmq.MAX_SOCKETS)
launcher.make_room_for_kernels(app)
print(json.dumps({"before": before, "after": context.get(zmq.MAX_SOCKETS), "zmqLimit": context.get(zmq.SOCKET_LIMIT),
                  "softFiles": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "hardFiles": hard}))
`;
    const run = spawnSync(PYTHON, ['-c', script], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(0);
    const limits = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, number>;
    expect(limits.before).toBe(1023);
    expect(limits.after).toBe(limits.zmqLimit);
    expect(limits.after).toBeGreaterThanOrEqual(8_192);
    expect(limits.softFiles).toBe(limits.hardFiles);
  });

});
