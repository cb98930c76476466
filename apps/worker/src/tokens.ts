/** Injection tokens of the worker's configuration values. */
export const WORKER_CONFIG = Symbol('WORKER_CONFIG');
