/**
 * docker/api.Dockerfile and docker/worker.Dockerfile do what `npm start` does natively
 * (scripts/start.js, package.json's start:api and start:worker): the same requirements file and
 * venv place, the same install and build commands, the same entrypoints; and every file they
 * COPY exists and is not excluded by .dockerignore. Read on paper, in a second: the images built
 * and run are test/containers' (fleet.container-spec.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadWorkerConfig } from '@kernelfleet/config';
import { REPO_ROOT, repoPath } from './support/kustomize';

interface Instruction {
  keyword: string;
  /** The arguments as written (continuations joined). */
  text: string;
  /** Exec form (`["a", "b"]`) parsed; undefined for shell form. */
  exec?: string[];
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, exec form parsed. */
function parseDockerfile(file: string): Instruction[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const instructions: Instruction[] = [];
  let pending = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw)) continue; // also inside a continued instruction, as Docker does
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (!whole) continue;
    const [, keyword, text] = /^(\S+)\s*(.*)$/s.exec(whole) as RegExpExecArray;
    let exec: string[] | undefined;
    if (text.startsWith('[')) exec = JSON.parse(text) as string[];
    instructions.push({ keyword: keyword.toUpperCase(), text: text.replace(/\s+/g, ' '), exec });
  }
  return instructions;
}

const PACKAGE = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { scripts: Record<string, string> };
const START_JS = readFileSync(repoPath('scripts', 'start.js'), 'utf8');

/** `path.join(ROOT, 'a', 'b')` in scripts/start.js → 'a/b'. */
function startJsPath(constant: string): string {
  const match = new RegExp(`const ${constant} = path\\.join\\(ROOT, ([^)]*)\\)`).exec(START_JS);
  if (!match) throw new Error(`scripts/start.js no longer defines ${constant} = path.join(ROOT, …)`);
  return [...match[1].matchAll(/'([^']+)'/g)].map((m) => m[1]).join('/');
}

/** The command `npm run start:<app>` finally runs, after its build step, as argv. */
function startCommand(app: 'api' | 'worker'): string[] {
  const script = PACKAGE.scripts[`start:${app}`];
  const [build, start] = script.split(' && ');
  expect(build).toBe('npm run -s build');
  return start.split(' ');
}

const dockerignore = readFileSync(repoPath('.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim().replace(/\/$/, ''))
  .filter((l) => l && !l.startsWith('#'));

/** True when .dockerignore's simple patterns (names, `*.ext`, paths) exclude `path`. */
function ignored(path: string): boolean {
  const parts = path.split('/');
  return dockerignore.some((pattern) => {
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    return re.test(path) || parts.some((_, i) => re.test(parts.slice(0, i + 1).join('/')));
  });
}

describe.each(['api', 'worker'] as const)('docker/%s.Dockerfile', (app) => {
  const file = repoPath('docker', `${app}.Dockerfile`);
  const steps = parseDockerfile(file);
  const of = (keyword: string) => steps.filter((s) => s.keyword === keyword);
  const runs = of('RUN').map((s) => s.text);
  const workdir = of('WORKDIR').at(-1)?.text as string;

  it('builds both stages on node:20-bookworm-slim (Node 20, Debian 12) unless the builder names another base', () => {
    // scripts/images.js passes NODE_IMAGE only where Docker Hub cannot be reached.
    expect(of('ARG').map((s) => s.text)).toContain('NODE_IMAGE=node:20-bookworm-slim');
    expect(of('FROM').map((s) => s.text)).toEqual(['${NODE_IMAGE} AS build', '${NODE_IMAGE}']);
  });

  it('runs with nothing of the build stage but its output: no build CA, no compiler, no dev packages', () => {
    const runtime = steps.slice(steps.map((s) => s.keyword).lastIndexOf('FROM'));
    const copied = runtime.filter((s) => s.keyword === 'COPY').map((s) => s.text);
    expect(copied.filter((c) => c.includes('build-ca'))).toEqual([]);
    expect(copied.filter((c) => c.startsWith('--from=build')).map((c) => c.split(' ')[1])).toEqual(
      app === 'worker' ? ['/app/.venv', '/app/package.json', '/app/node_modules', '/app/dist'] : ['/app/package.json', '/app/node_modules', '/app/dist'],
    );
    expect(runs.join(' ')).toMatch(/npm prune --omit=dev/);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const copies = of('COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies.filter((c) => !c.text.startsWith('--from='))) {
      const sources = copy.text.split(' ').slice(0, -1);
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) {
        expect([source, existsSync(join(REPO_ROOT, source))]).toEqual([source, true]);
        expect([source, ignored(source)]).toEqual([source, false]);
      }
    }
    expect(of('ADD')).toEqual([]);
  });

  it('installs node packages with npm ci from the lockfile, as npm start does, before building', () => {
    // npm ci from the lockfile, with the dev dependencies the build needs even under NODE_ENV=production.
    expect(START_JS).toContain("[fs.existsSync(lockfile) ? 'ci' : 'install', '--include=dev']");
    const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
    const build = runs.findIndex((r) => /\bnpm run (-s )?build\b/.test(r));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(build).toBeGreaterThan(ci);
    expect(of('COPY').some((c) => c.text.split(' ').includes('package-lock.json'))).toBe(true);
  });

  it('builds with the build script npm start runs', () => {
    expect(START_JS).toMatch(/run\('npm', \['run', '-s', 'build'\]/);
    expect(PACKAGE.scripts.build).toBe('tsc -p tsconfig.build.json && node scripts/build-client.js');
    expect(runs.some((r) => /\bnpm run (-s )?build\b/.test(r))).toBe(true);
    const copied = of('COPY').flatMap((c) => c.text.split(' ').slice(0, -1));
    for (const needed of ['tsconfig.json', 'tsconfig.build.json', 'libs', 'apps', 'scripts/paths.js', 'scripts/build-client.js']) expect(copied).toContain(needed);
  });

  it(`starts what npm run start:${app} starts, from the repo root`, () => {
    expect(of('CMD').at(-1)?.exec).toEqual(startCommand(app));
    expect(workdir).toBe('/app');
  });

  if (app === 'api') {
    it('has no Python and does not run as root', () => {
      expect(runs.join(' ')).not.toMatch(/python|pip|venv/);
      expect(of('COPY').some((c) => c.text.startsWith('python'))).toBe(false);
      expect(of('USER').at(-1)?.text).toBe('node');
    });
  }

  if (app === 'worker') {
    it('builds .venv from python/requirements.txt where the worker looks for it, as npm start does', () => {
      const requirements = startJsPath('REQUIREMENTS');
      const venv = startJsPath('VENV');
      expect(requirements).toBe('python/requirements.txt');
      expect(venv).toBe('.venv');
      expect(of('COPY').map((c) => c.text)).toContain(`${requirements} ${requirements}`);
      const venvStep = runs.find((r) => /-m venv/.test(r)) as string;
      expect(venvStep).toMatch(new RegExp(`\\bpython3 -m venv (--clear )?${venv}\\b`));
      expect(venvStep).toMatch(new RegExp(`${venv}/bin/python -m pip install .*-r ${requirements}\\b`));
      // scripts/start.js's stamp: "<sha256 of requirements> <base python>"; the image's would
      // be up to date for `npm start` run in it.
      expect(START_JS).toMatch(/const wanted = `\$\{sha256\(REQUIREMENTS\)\} \$\{base\}`/);
      expect(venvStep).toMatch(/sha256sum python\/requirements\.txt \| cut -d' ' -f1\) python3" > \.venv\/\.requirements\.sha256/);
      // KERNELFLEET_PYTHON unset means <repo root>/.venv/bin/python; the image's repo root is WORKDIR.
      expect(loadWorkerConfig({}).jupyter.python).toBe(join(REPO_ROOT, venv, 'bin', 'python'));
      const env = of('ENV').map((e) => e.text).join(' ');
      const pinned = /KERNELFLEET_PYTHON=(\S+)/.exec(env);
      if (pinned) expect(pinned[1]).toBe(`${workdir}/${venv}/bin/python`);
    });

    it('installs Debian python3 and python3-venv, for which requirements.txt is pinned', () => {
      expect(runs.join(' ')).toMatch(/apt-get install -y --no-install-recommends python3 python3-venv\b/);
      expect(readFileSync(repoPath('python', 'requirements.txt'), 'utf8')).toMatch(/Debian 12's 3\.11\.2/);
    });

    it('carries the Jupyter server launcher, the kernel sandbox, the network rules and the kernel site', () => {
      expect(of('COPY').map((c) => c.text)).toContain('python python');
      for (const f of ['kernelfleet_jupyter.py', 'kernelfleet_sandbox.py', 'kernelfleet_netwall.py', 'kernel_site/kernelfleet_outstream.py']) {
        expect([f, existsSync(repoPath('python', f))]).toEqual([f, true]);
      }
      const copied = of('COPY').flatMap((c) => c.text.split(' ').slice(0, -1));
      expect(copied).toContain('scripts/worker-probe.js');
    });

    it('installs nftables (nft) for the kernels\' network rules, and no iptables', () => {
      const install = runs.join(' ');
      expect(install).toMatch(/apt-get install [^&]*\bnftables\b/);
      expect(install).not.toMatch(/\biptables\b/);
      expect(readFileSync(repoPath('python', 'kernelfleet_netwall.py'), 'utf8')).toMatch(/\["nft", "-f", "-"\]/);
    });

    it('runs as root (the kernel sandbox gives each kernel a uid) under tini', () => {
      expect(of('USER').at(-1)?.text ?? 'root').toBe('root');
      expect(of('ENTRYPOINT').at(-1)?.exec).toEqual(['/usr/bin/tini', '--']);
      expect(runs.join(' ')).toMatch(/apt-get install [^&]*\btini\b/);
    });
  }
});
