import { collectDefaultMetrics, Registry } from 'prom-client';

/** A registry of one process, with prom-client's default process and Node.js metrics. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
