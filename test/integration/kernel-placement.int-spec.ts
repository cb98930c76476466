import { existsSync, mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KernelClient, type KernelHandle } from '@kernelfleet/kernel';
import { KernelPlacement } from '../../apps/worker/src/kernels/kernel-placement';
import { SessionFolders } from '../../apps/worker/src/kernels/session-folders';
import { ExternalJupyter } from '../support/external-jupyter';

const REPO = resolve(__dirname, '..', '..');
const PYTHON = process.env.KERNELFLEET_PYTHON ?? join(REPO, '.venv', 'bin', 'python');

/**
 * A pool kernel is put in its session's folder as it is taken (KernelPlacement.moveInto): its
 * staging folder is renamed to a new session's, or, where the session has a folder already, a
 * setup cell the worker does not wait for moves it. The user's first cell, sent right after,
 * must run in the folder, and never anywhere else when the move fails.
 */
describe('a pool kernel moving into its session folder, on a real Jupyter server', () => {
  let root: string;
  let jupyter: ExternalJupyter;
  let client: KernelClient;
  let placement: KernelPlacement;
  const warnings: string[] = [];
  const kernels: KernelHandle[] = [];

  beforeAll(async () => {
    jest.spyOn(console, 'debug').mockImplementation(() => undefined); // @jupyterlab/services chatter
    jupyter = await ExternalJupyter.start();
    root = realpathSync(jupyter.rootDir); // as the kernels see it
    client = new KernelClient({ baseUrl: jupyter.server.url, token: jupyter.server.token });
    placement = new KernelPlacement(new SessionFolders(root, PYTHON, true, 'w1'), { warn: (m) => warnings.push(m) });
  });
  afterAll(async () => {
    for (const kernel of kernels) kernel.dispose();
    await jupyter?.stop();
  });

  /** A kernel in the server's root, as pool kernels were before they had staging folders. */
  async function rootKernel(): Promise<KernelHandle> {
    const kernel = await client.startKernel({ timeoutMs: 30_000 });
    kernels.push(kernel);
    return kernel;
  }

  /** A kernel in a staging folder of its own, as the pool's. */
  async function stagedKernel(): Promise<KernelHandle> {
    const kernel = await placement.startStaged((cwd) => client.startKernel({ cwd, timeoutMs: 30_000 }), false);
    kernels.push(kernel);
    return kernel;
  }

  /** The staging folders left under the root. */
  const stagingLeft = () => (existsSync(join(root, 'pool:w1')) ? readdirSync(join(root, 'pool:w1')) : []);

  async function until(condition: () => boolean): Promise<void> {
    for (const stop = Date.now() + 10_000; !condition() && Date.now() < stop; ) await new Promise((r) => setTimeout(r, 50));
  }

  async function stdoutOf(kernel: KernelHandle, code: string): Promise<{ status: string; stdout: string }> {
    let stdout = '';
    const outcome = await kernel.execute(code, { onStream: (name, text) => name === 'stdout' && (stdout += text), onDisplay: () => undefined });
    return { status: outcome.status, stdout };
  }

  it("is in a new session's folder without running a cell, and its staging folder is the session's", async () => {
    const kernel = await stagedKernel();
    expect(stagingLeft()).toHaveLength(1);
    const execute = jest.spyOn(kernel, 'execute');
    expect(await placement.moveInto(kernel, { tenant: 'acme', sessionId: 'fresh' })).toBe(true);
    expect(execute).not.toHaveBeenCalled();
    expect(stagingLeft()).toEqual([]);
    const { status, stdout } = await stdoutOf(kernel, "import os; print(os.getcwd()); open('here.txt', 'w').write('x')");
    expect(status).toBe('ok');
    expect(stdout.trim()).toBe(join(root, 'acme', 'fresh'));
    expect(existsSync(join(root, 'acme', 'fresh', 'here.txt'))).toBe(true);
  });

  it("moves by a setup cell into a session's folder that exists, keeps its files, and its staging folder goes", async () => {
    mkdirSync(join(root, 'acme', 'kept'), { recursive: true });
    writeFileSync(join(root, 'acme', 'kept', 'earlier.txt'), 'from the kernel before');
    const kernel = await stagedKernel();
    expect(await placement.moveInto(kernel, { tenant: 'acme', sessionId: 'kept' })).toBe(true);
    const { status, stdout } = await stdoutOf(kernel, "import os; print(os.getcwd()); print(open('earlier.txt').read())");
    expect(status).toBe('ok');
    expect(stdout.trim().split('\n')).toEqual([join(root, 'acme', 'kept'), 'from the kernel before']);
    await until(() => stagingLeft().length === 0);
    expect(stagingLeft()).toEqual([]);
  });

  it('a staged kernel that gets no session leaves no folder behind', async () => {
    const kernel = await stagedKernel();
    expect(stagingLeft()).toHaveLength(1);
    await kernel.shutdown();
    placement.release(kernel);
    await until(() => stagingLeft().length === 0);
    expect(stagingLeft()).toEqual([]);
  });

  it("runs the cell sent right after the move in the session's folder", async () => {
    const kernel = await rootKernel();
    expect(await placement.moveInto(kernel, { tenant: 'acme', sessionId: 's1' })).toBe(true);
    const { status, stdout } = await stdoutOf(kernel, "import os; print(os.getcwd()); open('here.txt', 'w').write('x')");
    expect(status).toBe('ok');
    expect(stdout.trim()).toBe(join(root, 'acme', 's1'));
    expect(existsSync(join(root, 'acme', 's1', 'here.txt'))).toBe(true);
  });

  it('a kernel that cannot move exits before the next cell runs, and that cell runs nowhere', async () => {
    const kernel = await stagedKernel();
    mkdirSync(join(root, 'acme'), { recursive: true });
    writeFileSync(join(root, 'acme', 'blocked'), 'a file where the folder would be');
    expect(await placement.moveInto(kernel, { tenant: 'acme', sessionId: 'blocked' })).toBe(true);
    await expect(kernel.execute("open('escaped.txt', 'w').write('x')", { onStream: () => undefined, onDisplay: () => undefined })).rejects.toThrow();
    await expect(kernel.dead).resolves.toBeDefined();
    expect(existsSync(join(root, 'escaped.txt'))).toBe(false);
    expect(readdirSync(join(root, 'pool:w1')).flatMap((staging) => readdirSync(join(root, 'pool:w1', staging)))).not.toContain('escaped.txt');
    expect(warnings.some((w) => w.includes(`could not move into`))).toBe(true);
  });
});
