import { JupyterApiError } from './kernel-errors';

/** Where a Jupyter server listens and the token that authorises requests to it. */
export interface JupyterEndpoint {
  /** e.g. `http://127.0.0.1:8890` (a trailing slash is fine). */
  baseUrl: string;
  token: string;
}

/** The kernel model of the Jupyter REST API (`/api/kernels/{id}`). */
export interface KernelModel {
  id: string;
  name: string;
  execution_state?: string;
  last_activity?: string;
  connections?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Splits a kernel working directory (relative to the server's root_dir) into segments.
 *
 * @throws TypeError for absolute paths, `..` segments, backslashes or NUL characters.
 */
export function kernelPathSegments(cwd: string): string[] {
  if (cwd.startsWith('/') || cwd.includes('\\') || cwd.includes('\0')) {
    throw new TypeError(`kernel cwd must be a relative POSIX path: ${JSON.stringify(cwd)}`);
  }
  const segments = cwd.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new TypeError(`kernel cwd must not contain '..': ${JSON.stringify(cwd)}`);
  return segments;
}

/** True when `error` is a failure to reach the server at all (refused, reset), not an HTTP status. */
export function isConnectionFailure(error: unknown): boolean {
  return error instanceof TypeError && !(error instanceof JupyterApiError) && /fetch failed/i.test(error.message);
}

/** Thin, bounded wrapper over the few Jupyter REST endpoints kernelfleet needs (global fetch). */
export class JupyterRestClient {
  private readonly baseUrl: string;

  constructor(private readonly endpoint: JupyterEndpoint) {
    this.baseUrl = endpoint.baseUrl.replace(/\/+$/, '');
  }

  /** `GET /api/status`. */
  async status(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    return this.request('GET', '/api/status', { timeoutMs });
  }

  /**
   * `POST /api/kernels`: launches a kernel whose working directory is `path` under root_dir.
   * Give it a generous bound: an abandoned request still starts a kernel nobody knows about.
   */
  async startKernel(name: string, path: string | undefined, timeoutMs = 60_000): Promise<KernelModel> {
    const body = path === undefined ? { name } : { name, path };
    return (await this.request('POST', '/api/kernels', { body, timeoutMs })) as KernelModel;
  }

  /** `GET /api/kernels/{id}`; `undefined` when the server does not know the kernel (404). */
  async getKernel(id: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<KernelModel | undefined> {
    return (await this.request('GET', `/api/kernels/${encodeURIComponent(id)}`, { timeoutMs, allow404: true })) as
      | KernelModel
      | undefined;
  }

  /** `POST /api/kernels/{id}/interrupt` (SIGINT to the kernel for ipykernel). */
  async interruptKernel(id: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    await this.request('POST', `/api/kernels/${encodeURIComponent(id)}/interrupt`, { timeoutMs });
  }

  /** `DELETE /api/kernels/{id}`; an unknown kernel (404) counts as already shut down. */
  async shutdownKernel(id: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    await this.request('DELETE', `/api/kernels/${encodeURIComponent(id)}`, { timeoutMs, allow404: true });
  }

  /**
   * Creates `path` (relative to root_dir) and its parents through the contents API. Another
   * kernel start (or another worker sharing the folder) may create the same folder at the same
   * moment; the server then answers 500 "File exists", so a failed PUT is checked with a GET.
   */
  async ensureDirectory(path: string, signal?: AbortSignal): Promise<void> {
    const segments = kernelPathSegments(path);
    for (let i = 1; i <= segments.length; i++) {
      const apiPath = `/api/contents/${segments.slice(0, i).map(encodeURIComponent).join('/')}`;
      try {
        await this.request('PUT', apiPath, { body: { type: 'directory' }, signal });
      } catch (error) {
        if (!(error instanceof JupyterApiError)) throw error;
        const existing = (await this.request('GET', `${apiPath}?content=0`, { signal, allow404: true })) as { type?: string } | undefined;
        if (existing?.type !== 'directory') throw error;
      }
    }
  }

  private async request(
    method: string,
    path: string,
    options: { body?: unknown; timeoutMs?: number; signal?: AbortSignal; allow404?: boolean },
  ): Promise<unknown> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { Authorization: `token ${this.endpoint.token}`, 'Content-Type': 'application/json' },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
    const text = await response.text();
    if (response.status === 404 && options.allow404) return undefined;
    if (!response.ok) throw new JupyterApiError(method, path, response.status, errorDetail(text));
    return text ? JSON.parse(text) : undefined;
  }
}

function errorDetail(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown; reason?: unknown };
    return String(parsed.message ?? parsed.reason ?? '').slice(0, 500);
  } catch {
    return body.slice(0, 200);
  }
}
