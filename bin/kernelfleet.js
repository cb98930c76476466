#!/usr/bin/env node
// `kernelfleet` from a checkout (`npx kernelfleet …`): runs the compiled CLI (apps/cli), building
// the tree first when the CLI or the client library changed since the last build. Several
// `kernelfleet` started at once build once: the others wait for the build's lock.
const { spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const entry = path.join(root, 'dist', 'apps', 'cli', 'src', 'main.js');

function newestSource(dir) {
  let newest = 0;
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, item.name);
    if (item.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (item.name.endsWith('.ts') && !item.name.endsWith('.spec.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

const stale = () =>
  !existsSync(entry) || Math.max(...['apps/cli/src', 'libs/client/src'].map((dir) => newestSource(path.join(root, dir)))) > statSync(entry).mtimeMs;
const lock = path.join(root, 'dist', '.cli-build-lock');
/** A lock left by a build that died is taken over after this long. */
const LOCK_STALE_MS = 10 * 60_000;

function build() {
  mkdirSync(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })?.mtimeMs > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      // Another kernelfleet builds: wait for it, then look again.
      spawnSync('sleep', ['0.2']);
      if (!existsSync(lock) && !stale()) return;
    }
  }
  let failed = 0;
  try {
    if (!stale()) return;
    process.stderr.write('kernelfleet: building (npm run build) …\n');
    const built = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
    if (built.status !== 0) failed = built.status ?? 1;
    else {
      // tsc leaves an unchanged output as it was: mark the build as newer than the sources.
      const now = new Date();
      utimesSync(entry, now, now);
    }
  } finally {
    // Before any exit: process.exit would skip this, and the others would wait for a stale lock.
    rmSync(lock, { recursive: true, force: true });
  }
  if (failed) process.exit(failed);
}

if (stale()) build();
require(path.join(root, 'scripts', 'paths.js'));
require(entry);
