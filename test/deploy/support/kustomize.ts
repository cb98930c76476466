import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { requireTool } from './external-tool';

/** A Kubernetes object as kustomize renders it. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

/** The folder of this repository. */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');
export const repoPath = (...parts: string[]): string => join(REPO_ROOT, ...parts);

const KUBECTL_INSTALL = 'install kubectl 1.27 or later (kustomize v5 built in); `bash .ci/deploy-tools.sh` checks it';

/**
 * The objects of the kustomization in `dir`, rendered by `kubectl kustomize` (offline: no
 * cluster, no network). Throws kustomize's own message when it refuses the folder.
 */
export function renderKustomization(dir: string): Manifest[] {
  const run = spawnSync(requireTool('kubectl', KUBECTL_INSTALL), ['kustomize', dir], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${run.stderr || run.error?.message}`);
  return parseAllDocuments(run.stdout).map((doc) => {
    if (doc.errors.length) throw new Error(`kubectl kustomize ${dir} printed YAML that does not parse: ${doc.errors[0].message}`);
    return doc.toJS() as Manifest;
  });
}

/** The pod specs of workload objects (Deployment, StatefulSet, …). */
export function podSpecs(objects: Manifest[]): { owner: Manifest; spec: Record<string, unknown> }[] {
  return objects.flatMap((o) => {
    const template = (o.spec as { template?: { spec?: Record<string, unknown> } } | undefined)?.template;
    return template?.spec ? [{ owner: o, spec: template.spec }] : [];
  });
}
