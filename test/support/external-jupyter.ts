import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JupyterServer, kernelEnvironment } from '@kernelfleet/kernel';

const ROOT = join(__dirname, '..', '..');

/**
 * A Jupyter server owned by the test (not by the worker), so the test can see every kernel the
 * worker starts and shuts down: pass `workerEnv` to `Stack.start`, list with `kernelIds()`.
 */
export class ExternalJupyter {
  private constructor(
    readonly server: JupyterServer,
    readonly rootDir: string,
  ) {}

  static async start(): Promise<ExternalJupyter> {
    const rootDir = mkdtempSync(join(tmpdir(), 'kf-e2e-jupyter-'));
    const server = await JupyterServer.start({
      python: process.env.KERNELFLEET_PYTHON ?? join(ROOT, '.venv', 'bin', 'python'),
      rootDir,
      env: kernelEnvironment(process.env),
    });
    return new ExternalJupyter(server, rootDir);
  }

  get workerEnv(): Record<string, string> {
    // The server's root is where the session folders are (session files work there too).
    return { JUPYTER_URL: this.server.url, JUPYTER_TOKEN: this.server.token, KERNEL_ROOT_DIR: this.rootDir };
  }

  /** Ids of the kernels the server currently holds. */
  async kernelIds(): Promise<string[]> {
    const res = await fetch(`${this.server.url}/api/kernels`, { headers: { authorization: `token ${this.server.token}` } });
    if (!res.ok) throw new Error(`GET /api/kernels answered ${res.status}`);
    return ((await res.json()) as { id: string }[]).map((k) => k.id).sort();
  }

  /**
   * Polls until `check(ids)` holds; returns the last listing (the caller asserts on it). A
   * listing the server fails to give (jupyter-server can answer 500 while a kernel it lists is
   * being shut down) is asked again, until the timeout.
   */
  async kernelsUntil(check: (ids: string[]) => boolean, timeoutMs = 10_000): Promise<string[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const ids = await this.kernelIds().catch((error: unknown) => {
        if (Date.now() > until) throw error;
        return null;
      });
      if (ids && (check(ids) || Date.now() > until)) return ids;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.rootDir, { recursive: true, force: true });
  }
}

/** Python that prints the id of the kernel running it (ipykernel's connection file is `kernel-<id>.json`). */
export const PRINT_KERNEL_ID =
  "import os as _os, ipykernel.connect as _ic\nprint('kernel-id', _os.path.basename(_ic.get_connection_file())[len('kernel-'):-len('.json')])";

/** The kernel id printed by {@link PRINT_KERNEL_ID} in an execution's output. */
export function kernelIdIn(output: string | undefined): string {
  const match = /^kernel-id (\S+)$/m.exec(output ?? '');
  if (!match) throw new Error(`no kernel id in output: ${JSON.stringify(output)}`);
  return match[1];
}
