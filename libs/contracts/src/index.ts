export * from './api-keys';
export * from './display';
export * from './events';
export * from './execution';
export * from './ids';
export * from './jobs';
export * from './problems';
export * from './tools';
