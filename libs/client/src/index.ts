export { KernelfleetClient, type ExecuteOptions, type KernelfleetClientOptions } from './client.js';
export { KernelfleetConnectionError, KernelfleetError } from './errors.js';
export { ExecutionHandle, type ToolHandler, type ToolHandlers } from './execution.js';
export type { ExecutePythonOptions, PythonResult } from './execute-python.js';
export type { RetryOptions } from './http.js';
export { SessionFiles, sessionFilePathProblem } from './session-files.js';
export type {
  SessionFileCallOptions,
  SessionFileData,
  SessionFileListOptions,
  SessionFileWritten,
  SessionFolderDownloaded,
} from './session-file-types.js';
export { sessionIdForFolder } from './session-id.js';
export { TarError } from './tar.js';
export * from './types.js';
