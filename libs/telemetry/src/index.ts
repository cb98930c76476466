export * from './cached-value';
export * from './execution-metrics';
export * from './json-logger';
export * from './metrics-registry';
export * from './metrics-server';
