export { JupyterServer, findFreePort, findLauncherScript } from './jupyter-server';
export type { JupyterServerExit, JupyterServerOptions, KernelSandboxSettings } from './jupyter-server';
export { ALLOWED_HOST_VARIABLES, FORCED_KERNEL_VARIABLES, kernelEnvironment } from './kernel-environment';
export { KernelClient } from './kernel-client';
export type { KernelClientOptions, StartKernelOptions } from './kernel-client';
export type { ExecuteHandlers, ExecuteOutcome, KernelHandle } from './kernel-handle';
export { normaliseDisplayText, toDisplayOutputs } from './display-mapping';
export type { MappedDisplay } from './display-mapping';
export { htmlToMarkdown } from './html-markdown-converter';
export type { JupyterEndpoint, KernelModel } from './jupyter-rest-client';
export {
  JupyterApiError,
  JupyterServerStartError,
  KernelClosedError,
  KernelDiedError,
  KernelStartTimeoutError,
} from './kernel-errors';
export { checkKernelReach, holdNetworkWalls, NetworkWallsConflictError } from './kernel-walls';
export type { KernelReach, NetworkWallHold, NetworkWallSettings } from './kernel-walls';
