// Validates custom resources (KEDA's ScaledObject, the Prometheus operator's ServiceMonitor and
// PrometheusRule) with the model classes of @kubernetes-models/keda and
// @kubernetes-models/prometheus-operator (their validate(): the CRDs' OpenAPI schemas, so a wrong
// field type fails). kubernetes-validate, which checks the built-in objects, has no schema for
// them. Those packages are ES modules only, which Jest's CommonJS runtime cannot load:
// test/deploy/k8s.spec.ts runs this file with node.
// stdin: a JSON array of objects. stdout: a JSON array of { id, error } (error null when valid).
import { readFileSync } from 'node:fs';

/** The module that holds the model of apiVersion/kind. */
function modelModule(apiVersion, kind) {
  if (apiVersion.startsWith('keda.sh/')) return `@kubernetes-models/keda/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  throw new Error('not a custom resource this file knows');
}

const objects = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const object of objects) {
  const id = `${object.apiVersion}/${object.kind}/${object.metadata?.name}`;
  let model;
  try {
    model = (await import(modelModule(object.apiVersion, object.kind)))[object.kind];
  } catch (error) {
    results.push({ id, error: `no model for ${object.apiVersion} ${object.kind}: ${error.message}` });
    continue;
  }
  try {
    new model(object).validate();
    results.push({ id, error: null });
  } catch (error) {
    results.push({ id, error: error.message });
  }
}
process.stdout.write(JSON.stringify(results));
