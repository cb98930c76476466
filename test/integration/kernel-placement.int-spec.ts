import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KernelClient, type KernelHandle } from '@kernelfleet/kernel';
import { KernelPlacement } from '../../apps/worker/src/kernels/kernel-placement';
import { SessionFolders } from '../../apps/worker/src/kernels/session-folders';
import { ExternalJupyter } from '../support/external-jupyter';

const REPO = resolve(__dirname, '..', '..');
const PYTHON = process.env.KERNELFLEET_PYTHON ?? join(REPO, '.venv', 'bin', 'python');

/**
 * A pool kernel moves into its session's folder by a setup cell the worker does not wait for
 * (KernelPlacement.moveInto): the user's first cell, sent right after, must run in the folder,
 * and never anywhere else when the move fails.
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
    placement = new KernelPlacement(new SessionFolders(root, PYTHON, true), { warn: (m) => warnings.push(m) });
  });
  afterAll(async () => {
    for (const kernel of kernels) kernel.dispose();
    await jupyter?.stop();
  });

  async function poolKernel(): Promise<KernelHandle> {
    const kernel = await client.startKernel({ timeoutMs: 30_000 }); // in the server's root, as the pool's
    kernels.push(kernel);
    return kernel;
  }

  async function stdoutOf(kernel: KernelHandle, code: string): Promise<{ status: string; stdout: string }> {
    let stdout = '';
    const outcome = await kernel.execute(code, { onStream: (name, text) => name === 'stdout' && (stdout += text), onDisplay: () => undefined });
    return { status: outcome.status, stdout };
  }

  it("runs the cell sent right after the move in the session's folder", async () => {
    const kernel = await poolKernel();
    expect(await placement.moveInto(kernel, { tenant: 'acme', sessionId: 's1' })).toBe(true);
    const { status, stdout } = await stdoutOf(kernel, "import os; print(os.getcwd()); open('here.txt', 'w').write('x')");
    expect(status).toBe('ok');
    expect(stdout.trim()).toBe(join(root, 'acme', 's1'));
    expect(existsSync(join(root, 'acme', 's1', 'here.txt'))).toBe(true);
  });

  it('a kernel that cannot move exits before the next cell runs, and that cell runs nowhere', async () => {
    const kernel = await poolKernel();
    mkdirSync(join(root, 'acme'), { recursive: true });
    writeFileSync(join(root, 'acme', 'blocked'), 'a file where the folder would be');
    expect(await placement.moveInto(kernel, { tenant: 'acme', sessionId: 'blocked' })).toBe(true);
    await expect(kernel.execute("open('escaped.txt', 'w').write('x')", { onStream: () => undefined, onDisplay: () => undefined })).rejects.toThrow();
    await expect(kernel.dead).resolves.toBeDefined();
    expect(existsSync(join(root, 'escaped.txt'))).toBe(false);
    expect(warnings.some((w) => w.includes(`could not move into`))).toBe(true);
  });
});
