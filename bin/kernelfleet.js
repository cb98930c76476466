#!/usr/bin/env node
// `kernelfleet` from a checkout (`npx kernelfleet …`): runs the compiled CLI (apps/cli), building
// the tree first when the CLI or the client library changed since the last build.
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, statSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const entry = path.join(root, 'dist', 'apps', 'cli', 'src', 'main.js');

function newestSource(dir) {
  let newest = 0;
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, item.name);
    if (item.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (item.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

const sources = ['apps/cli/src', 'libs/client/src'].map((dir) => newestSource(path.join(root, dir)));
if (!existsSync(entry) || Math.max(...sources) > statSync(entry).mtimeMs) {
  process.stderr.write('kernelfleet: building (npm run build) …\n');
  const built = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
require(path.join(root, 'scripts', 'paths.js'));
require(entry);
