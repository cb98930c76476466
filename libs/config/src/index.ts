export * from './config';
export * from './redis-target';
