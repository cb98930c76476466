/** A kernel did not become ready (kernel_info answered) within the allowed time. */
export class KernelStartTimeoutError extends Error {
  override readonly name = 'KernelStartTimeoutError';

  constructor(readonly timeoutMs: number) {
    super(`kernel did not become ready within ${timeoutMs} ms`);
  }
}

/**
 * The kernel process died, was restarted, or became unreachable; any execution in flight is lost
 * together with the kernel's globals.
 */
export class KernelDiedError extends Error {
  override readonly name = 'KernelDiedError';

  constructor(
    readonly kernelId: string,
    readonly reason: string,
  ) {
    super(`kernel ${kernelId} died: ${reason}`);
  }
}

/** The handle was disposed or shut down while an execution was in flight, or used afterwards. */
export class KernelClosedError extends Error {
  override readonly name = 'KernelClosedError';

  constructor(readonly kernelId: string) {
    super(`kernel ${kernelId} handle is closed`);
  }
}

/** The Jupyter server answered a REST call with an unexpected HTTP status. */
export class JupyterApiError extends Error {
  override readonly name = 'JupyterApiError';

  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    detail: string,
  ) {
    super(`${method} ${path} -> HTTP ${status}${detail ? `: ${detail}` : ''}`);
  }
}

/** The Jupyter server process failed to start or did not answer /api/status in time. */
export class JupyterServerStartError extends Error {
  override readonly name = 'JupyterServerStartError';

  constructor(
    message: string,
    /** The last lines the server printed, for diagnosis. */
    readonly logTail: string[],
  ) {
    super(logTail.length ? `${message}\n${logTail.join('\n')}` : message);
  }
}
