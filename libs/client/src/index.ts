export { KernelfleetClient, type ExecuteOptions, type KernelfleetClientOptions } from './client.js';
export { KernelfleetConnectionError, KernelfleetError } from './errors.js';
export { ExecutionHandle, type ToolHandler, type ToolHandlers } from './execution.js';
export type { ExecutePythonOptions, PythonResult } from './execute-python.js';
export type { RetryOptions } from './http.js';
export { sessionIdForFolder } from './session-id.js';
export * from './types.js';
