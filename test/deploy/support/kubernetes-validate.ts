import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { requireTool } from './external-tool';
import { type Manifest, repoPath } from './kustomize';

/**
 * kubernetes-validate (PyPI): the JSON schemas of the Kubernetes API, offline. Strict, so a
 * field the API does not know (a misspelt `readinesProbe`) is an error, as it is for
 * `kubectl apply --validate=strict`. It knows the built-in kinds only, not custom resources.
 */
const PACKAGE = 'kubernetes-validate==1.37.0';
/** The Kubernetes release whose schemas the objects must satisfy. */
export const KUBERNETES_VERSION = '1.30';

/** The tests' own venv (.kernelfleet/ is not in git), one per pinned version. */
const VENV = repoPath('.kernelfleet', 'deploy-tools', PACKAGE.replace('==', '-'));
const PYTHON = join(VENV, 'bin', 'python');

/**
 * Creates the venv on first use. It is built beside its place and renamed into it, so a run cut
 * short (or a second one at the same time) never leaves a half-installed venv where the next
 * run looks. The tool runs as `python -m kubernetes_validate`: the scripts pip writes in bin/
 * name the folder they were installed in.
 */
function ensureInstalled(): void {
  if (existsSync(PYTHON)) return;
  const python3 = requireTool('python3', 'install python3 with venv (Debian: python3-venv)');
  const building = `${VENV}.${process.pid}`;
  const steps: [string, string[]][] = [
    [python3, ['-m', 'venv', building]],
    [join(building, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', PACKAGE]],
  ];
  mkdirSync(dirname(VENV), { recursive: true });
  try {
    for (const [command, args] of steps) {
      const run = spawnSync(command, args, { encoding: 'utf8' });
      if (run.status !== 0) {
        throw new Error(`could not install ${PACKAGE} into ${VENV} (it needs python3 -m venv and PyPI): ${command} ${args.join(' ')}: ${run.stderr || run.error?.message}`);
      }
    }
    if (!existsSync(PYTHON)) renameSync(building, VENV);
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
}

/**
 * kubernetes-validate's report on `objects`: a line for each object that breaks its schema or
 * that it has no schema for. Empty when every object is valid.
 */
export function kubernetesValidate(objects: Manifest[]): string[] {
  ensureInstalled();
  const run = spawnSync(PYTHON, ['-m', 'kubernetes_validate', '--strict', '--quiet', '--kubernetes-version', KUBERNETES_VERSION, '-'], {
    input: objects.map((o) => stringify(o)).join('---\n'),
    encoding: 'utf8',
  });
  const report = run.stdout.split('\n').filter(Boolean);
  if (run.status !== 0 && report.length === 0) throw new Error(`kubernetes-validate failed: ${run.stderr || run.error?.message}`);
  return report;
}
