import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as read from YAML. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/**
 * The subset of kustomize that k8s/ uses, enough to render an overlay without the kustomize
 * binary. Anything else in a kustomization.yaml is refused (an error), so the test cannot pass
 * over a feature it does not apply.
 *
 * Supported fields:
 * - `resources`: YAML files (several documents each) and folders holding a kustomization.yaml;
 * - `namespace`: set on every object except cluster-scoped kinds;
 * - `labels` (`pairs`, `includeSelectors: false`, optional `includeTemplates`);
 * - `images` (`name`, `newName`, `newTag`, `digest`) in containers and initContainers;
 * - `configMapGenerator` with `files` (`key=path` or `path`), `literals`, and
 *   `options.labels`; `options.disableNameSuffixHash: true` is required (no name hashing);
 * - `patches` with `path` or `patch`: with a `target` and a list of operations, a JSON 6902
 *   patch (`add`, `replace`, `remove`, `test`); otherwise a strategic merge patch matched by
 *   kind and name, where maps merge, `null` deletes a key, lists of objects merge by their
 *   merge key (`name` for containers, env, volumes, ports…, `mountPath` for volumeMounts,
 *   `containerPort` for container ports) and other lists are replaced.
 */
export function renderKustomization(dir: string): Manifest[] {
  const file = join(dir, 'kustomization.yaml');
  const k = parseOne(readFileSync(file, 'utf8'), file) as JsonObject;
  const known = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'configMapGenerator', 'patches']);
  const unknown = Object.keys(k).filter((key) => !known.has(key));
  if (unknown.length) throw new Error(`${file}: unsupported kustomization fields: ${unknown.join(', ')}`);
  if (k.kind !== 'Kustomization') throw new Error(`${file}: kind must be Kustomization`);

  let objects: Manifest[] = [];
  for (const entry of (k.resources ?? []) as string[]) {
    const path = resolve(dir, entry);
    objects.push(...(statSync(path).isDirectory() ? renderKustomization(path) : readManifests(path)));
  }
  for (const generator of (k.configMapGenerator ?? []) as JsonObject[]) objects.push(configMapFrom(dir, generator));
  for (const patch of (k.patches ?? []) as JsonObject[]) objects = applyPatch(dir, objects, patch);
  if (typeof k.namespace === 'string') {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  for (const set of (k.labels ?? []) as JsonObject[]) addLabels(objects, set);
  for (const image of (k.images ?? []) as JsonObject[]) setImage(objects, image);
  assertUnique(objects);
  return objects;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'RuntimeClass', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass', 'StorageClass']);

function parseOne(text: string, where: string): Json {
  const docs = parseAllDocuments(text);
  if (docs.length !== 1) throw new Error(`${where}: expected one YAML document`);
  return toJson(docs[0], where);
}

function toJson(doc: ReturnType<typeof parseAllDocuments>[number], where: string): Json {
  if ('errors' in doc && doc.errors.length) throw new Error(`${where}: ${doc.errors[0].message}`);
  return doc.toJS({ maxAliasCount: 100 }) as Json;
}

/** Every YAML document of `file` that is not empty, checked to look like a Kubernetes object. */
export function readManifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((doc) => toJson(doc, file))
    .filter((o): o is JsonObject => o !== null)
    .map((o) => {
      const m = o as unknown as Manifest;
      if (typeof m.apiVersion !== 'string' || typeof m.kind !== 'string' || typeof m.metadata?.name !== 'string') {
        throw new Error(`${file}: a document without apiVersion, kind and metadata.name`);
      }
      return m;
    });
}

function configMapFrom(dir: string, g: JsonObject): Manifest {
  const options = (g.options ?? {}) as JsonObject;
  if (options.disableNameSuffixHash !== true) {
    throw new Error(`configMapGenerator ${String(g.name)}: only disableNameSuffixHash: true is supported`);
  }
  const data: Record<string, string> = {};
  for (const spec of (g.files ?? []) as string[]) {
    const [key, path] = spec.includes('=') ? spec.split('=', 2) : [spec.split('/').pop() as string, spec];
    data[key] = readFileSync(resolve(dir, path), 'utf8');
  }
  for (const literal of (g.literals ?? []) as string[]) {
    const at = literal.indexOf('=');
    data[literal.slice(0, at)] = literal.slice(at + 1);
  }
  const metadata: Manifest['metadata'] = { name: String(g.name) };
  if (options.labels) metadata.labels = { ...(options.labels as Record<string, string>) };
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata, data };
}

function addLabels(objects: Manifest[], set: JsonObject): void {
  if (set.includeSelectors === true) throw new Error('labels: includeSelectors is not supported');
  const pairs = set.pairs as Record<string, string>;
  for (const o of objects) {
    o.metadata.labels = { ...(o.metadata.labels ?? {}), ...pairs };
    const template = (o.spec as JsonObject | undefined)?.template as JsonObject | undefined;
    if (set.includeTemplates === true && template) {
      const meta = (template.metadata ??= {}) as JsonObject;
      meta.labels = { ...((meta.labels as JsonObject) ?? {}), ...pairs };
    }
  }
}

/** The pod specs of workload objects (Deployment, StatefulSet, …). */
export function podSpecs(objects: Manifest[]): { owner: Manifest; spec: JsonObject }[] {
  return objects.flatMap((o) => {
    const spec = ((o.spec as JsonObject | undefined)?.template as JsonObject | undefined)?.spec as JsonObject | undefined;
    return spec ? [{ owner: o, spec }] : [];
  });
}

function setImage(objects: Manifest[], image: JsonObject): void {
  for (const { spec } of podSpecs(objects)) {
    for (const c of [...((spec.containers ?? []) as JsonObject[]), ...((spec.initContainers ?? []) as JsonObject[])]) {
      const current = String(c.image);
      const name = current.replace(/[@:][^/]*$/, '');
      if (name !== image.name) continue;
      const tag = image.digest ? `@${image.digest}` : image.newTag ? `:${image.newTag}` : current.slice(name.length);
      c.image = `${(image.newName as string | undefined) ?? name}${tag}`;
    }
  }
}

function assertUnique(objects: Manifest[]): void {
  const seen = new Set<string>();
  for (const o of objects) {
    const id = `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (seen.has(id)) throw new Error(`two objects with the same id: ${id}`);
    seen.add(id);
  }
}

function applyPatch(dir: string, objects: Manifest[], p: JsonObject): Manifest[] {
  const text = typeof p.path === 'string' ? readFileSync(resolve(dir, p.path), 'utf8') : String(p.patch);
  const body = parseOne(text, typeof p.path === 'string' ? p.path : 'inline patch');
  const target = p.target as JsonObject | undefined;
  if (Array.isArray(body)) {
    if (!target) throw new Error('a JSON 6902 patch needs a target');
    const matches = objects.filter((o) => matchesTarget(o, target));
    if (matches.length === 0) throw new Error(`patch target ${JSON.stringify(target)} matches nothing`);
    for (const o of matches) applyJson6902(o as unknown as JsonObject, body as JsonObject[]);
    return objects;
  }
  const patch = body as unknown as Manifest;
  const selector = target ?? { kind: patch.kind, name: patch.metadata?.name };
  const matches = objects.filter((o) => matchesTarget(o, selector));
  if (matches.length === 0) throw new Error(`strategic merge patch for ${JSON.stringify(selector)} matches nothing`);
  return objects.map((o) => (matches.includes(o) ? (strategicMerge(o as unknown as JsonObject, patch as unknown as JsonObject, []) as unknown as Manifest) : o));
}

function matchesTarget(o: Manifest, t: JsonObject): boolean {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  return (t.kind === undefined || t.kind === o.kind)
    && (t.name === undefined || t.name === o.metadata.name)
    && (t.group === undefined || t.group === group)
    && (t.version === undefined || t.version === version);
}

/** Merge keys of the lists k8s/ patches (as in the Kubernetes API's patchMergeKey). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'name',
  imagePullSecrets: 'name',
};

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strategicMerge(base: Json, patch: Json, path: string[]): Json {
  if (!isObject(base) || !isObject(patch)) return structuredClone(patch);
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete out[key];
    } else if (Array.isArray(value) && Array.isArray(out[key]) && MERGE_KEYS[key] && value.every(isObject)) {
      // Container ports have no required name: they merge by containerPort (as in the API).
      const mergeKey = key === 'ports' && path.includes('containers') ? 'containerPort' : MERGE_KEYS[key];
      const merged = [...(out[key] as Json[])];
      for (const item of value as JsonObject[]) {
        const at = merged.findIndex((m) => isObject(m) && m[mergeKey] === item[mergeKey]);
        if (at >= 0) merged[at] = strategicMerge(merged[at], item, [...path, key]);
        else merged.push(structuredClone(item));
      }
      out[key] = merged;
    } else {
      out[key] = key in out ? strategicMerge(out[key], value, [...path, key]) : structuredClone(value);
    }
  }
  return out;
}

function pointer(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`bad JSON pointer ${path}`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function applyJson6902(doc: JsonObject, ops: JsonObject[]): void {
  for (const op of ops) {
    const parts = pointer(String(op.path));
    const last = parts.pop() as string;
    let parent: Json = doc;
    for (const part of parts) {
      const next: Json | undefined = Array.isArray(parent) ? parent[Number(part)] : isObject(parent) ? parent[part] : undefined;
      if (next === undefined) throw new Error(`JSON patch path ${String(op.path)} does not exist`);
      parent = next;
    }
    const exists = Array.isArray(parent) ? Number(last) < parent.length || last === '-' : isObject(parent) && last in parent;
    if (op.op !== 'add' && !exists) throw new Error(`JSON patch ${String(op.op)} ${String(op.path)}: no such member`);
    if (op.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete (parent as JsonObject)[last];
    } else if (op.op === 'add' || op.op === 'replace') {
      const value = structuredClone(op.value as Json);
      if (Array.isArray(parent)) {
        if (last === '-') parent.push(value);
        else parent.splice(Number(last), op.op === 'add' ? 0 : 1, value);
      } else {
        (parent as JsonObject)[last] = value;
      }
    } else if (op.op === 'test') {
      const actual = Array.isArray(parent) ? parent[Number(last)] : (parent as JsonObject)[last];
      if (JSON.stringify(actual) !== JSON.stringify(op.value)) throw new Error(`JSON patch test ${String(op.path)} failed`);
    } else {
      throw new Error(`JSON patch op ${String(op.op)} is not supported`);
    }
  }
}

/** The folder of this repository. */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');
export const repoPath = (...parts: string[]): string => join(REPO_ROOT, ...parts);
