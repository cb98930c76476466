#!/usr/bin/env node
// `npm run images`: builds kernelfleet-api:local and kernelfleet-worker:local from this checkout,
// labelled with its git revision, and prints their sizes (docs/operations.md, "Images").
//
// The base is the official node:20-bookworm-slim where Docker Hub answers (or it is already
// pulled). Where it does not, a stand-in is built once per machine from Debian's mirror and the
// npm registry (docker/local-base.sh) and reused after. NODE_IMAGE=<image> picks a base outright.
// A proxy's CA reaches the build stages only: KERNELFLEET_BUILD_CA=<pem>, else NODE_EXTRA_CA_CERTS
// (docker/build-ca/README.md). `--redis-only` makes sure of a Redis image for docker-compose.yml and
// the tests, and builds nothing else.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const OFFICIAL_BASE = 'node:20-bookworm-slim';
const LOCAL_BASE = 'kernelfleet-base:node20-bookworm-slim';
const OFFICIAL_REDIS = 'redis:7.4-bookworm';
const IMAGES = [
  { name: 'kernelfleet-api:local', dockerfile: 'docker/api.Dockerfile' },
  { name: 'kernelfleet-worker:local', dockerfile: 'docker/worker.Dockerfile' },
];
/** docker-compose.yml's Redis where Docker Hub cannot be reached (REDIS_IMAGE=kernelfleet-redis:local). */
const LOCAL_REDIS = { name: 'kernelfleet-redis:local', dockerfile: 'docker/redis.Dockerfile' };
const BUILD_CA_COPY = path.join(ROOT, 'docker', 'build-ca', 'from-npm-run-images.pem');

function log(message) {
  console.log(`images: ${message}`);
}

function docker(args, { quiet = false } = {}) {
  return spawnSync('docker', args, { cwd: ROOT, encoding: 'utf8', stdio: quiet ? 'pipe' : ['ignore', 'inherit', 'inherit'] });
}

function imageExists(image) {
  return docker(['image', 'inspect', image], { quiet: true }).status === 0;
}

/** True when `image` is here already or could be pulled now. */
function pullable(image) {
  if (imageExists(image)) return true;
  const pull = docker(['pull', image], { quiet: true });
  if (pull.status !== 0) log(`${image} cannot be pulled (${(pull.stderr || '').trim().split('\n').pop()})`);
  return pull.status === 0;
}

/** The official base if present or pullable, else the local stand-in (built when missing). */
function chooseBase() {
  if (process.env.NODE_IMAGE) return process.env.NODE_IMAGE;
  if (pullable(OFFICIAL_BASE)) return OFFICIAL_BASE;
  if (imageExists(LOCAL_BASE)) {
    log(`using the local stand-in ${LOCAL_BASE}, built earlier on this machine`);
    return LOCAL_BASE;
  }
  log(`building the local stand-in ${LOCAL_BASE} (docker/local-base.sh)`);
  const built = spawnSync('bash', [path.join(ROOT, 'docker', 'local-base.sh'), LOCAL_BASE], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('docker/local-base.sh failed');
  return LOCAL_BASE;
}

/** Copies the build CA into docker/build-ca/ for the build; returns how to remove it after. */
function provideBuildCa() {
  const source = process.env.KERNELFLEET_BUILD_CA || process.env.NODE_EXTRA_CA_CERTS;
  if (!source) return () => {};
  fs.copyFileSync(source, BUILD_CA_COPY);
  log(`build stages trust ${source} as well (it does not reach the images)`);
  return () => fs.rmSync(BUILD_CA_COPY, { force: true });
}

function gitRevision() {
  const rev = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (rev.status !== 0) throw new Error('not a git checkout: the images are labelled with its revision');
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  if (dirty) log('the working tree has uncommitted changes: they are built, but the label names HEAD');
  return rev.stdout.trim();
}

function main() {
  if (docker(['version', '--format', '{{.Server.Version}}'], { quiet: true }).status !== 0) {
    console.error('images: no Docker engine answers (`docker version` fails): start one, then run npm run images again');
    process.exit(1);
  }
  const redis = pullable(OFFICIAL_REDIS) ? [] : [LOCAL_REDIS];
  const images = process.argv.includes('--redis-only') ? redis : [...IMAGES, ...redis];
  if (images.length === 0) return; // --redis-only, and the official Redis is here
  const revision = gitRevision();
  const base = chooseBase();
  const removeCa = provideBuildCa();
  const rows = [];
  try {
    for (const image of images) {
      log(`building ${image.name} from ${image.dockerfile} on ${base}`);
      const started = Date.now();
      const build = docker([
        'build', '-f', image.dockerfile, '-t', image.name,
        '--build-arg', `NODE_IMAGE=${base}`,
        '--label', `org.opencontainers.image.revision=${revision}`,
        '--label', 'org.opencontainers.image.title=kernelfleet',
        '.',
      ]);
      if (build.status !== 0) throw new Error(`docker build of ${image.name} failed`);
      const size = Number(docker(['image', 'inspect', '--format', '{{.Size}}', image.name], { quiet: true }).stdout);
      rows.push([image.name, `${(size / 1e6).toFixed(0)} MB`, `${((Date.now() - started) / 1000).toFixed(0)} s`]);
    }
  } finally {
    removeCa();
  }
  console.log(`\nimage                      size     build   (base ${base}, revision ${revision.slice(0, 12)})`);
  for (const [name, size, took] of rows) console.log(`${name.padEnd(26)} ${size.padStart(7)}  ${took.padStart(5)}`);
}

try {
  main();
} catch (err) {
  console.error(`images: ${err.message}`);
  process.exit(1);
}
