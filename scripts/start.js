#!/usr/bin/env node
'use strict';
/**
 * `npm start`: bootstraps what is missing (node_modules, .venv, dist/) and runs the whole stack in
 * the foreground: Redis (unless REDIS_URL is set), the api and WORKERS workers. Ctrl-C stops it all.
 * `node scripts/start.js --check` bootstraps only. Node built-ins only: it runs before `npm install`.
 */
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { startEmbeddedRedis, pingRedis, RedisStartError, PASSWORD_FILE } = require('./embedded-redis');

const ROOT = path.resolve(__dirname, '..');
const STATE_DIR = path.join(ROOT, '.kernelfleet');
const VENV = path.join(ROOT, '.venv');
const REQUIREMENTS = path.join(ROOT, 'python', 'requirements.txt');
const STAMP = path.join(VENV, '.requirements.sha256');
const MIN_PYTHON = [3, 11]; // numpy 2.3 (python/requirements.txt) needs 3.11+
const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;

/** An error whose message is for the user as is (no stack trace). */
class StartError extends Error {}
const fail = (message) => { throw new StartError(message); };
const log = (message) => process.stderr.write(`[start] ${message}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mtimeMs = (file) => (fs.existsSync(file) ? fs.statSync(file).mtimeMs : 0);
const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
/** Quotes for bash, so printed commands work when pasted. */
const shellQuote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function run(command, args, what) {
  log(`${what}: ${[command, ...args].map(shellQuote).join(' ')}`);
  const result = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error) fail(`${what} failed: ${result.error.message}`);
  if (result.status !== 0) fail(`${what} failed (${result.signal ?? `exit code ${result.status}`})`);
}

function ensureNodeModules() {
  const nodeModules = path.join(ROOT, 'node_modules');
  const lockfile = path.join(ROOT, 'package-lock.json');
  const newestManifest = Math.max(mtimeMs(lockfile), mtimeMs(path.join(ROOT, 'package.json')));
  if (mtimeMs(nodeModules) >= newestManifest) return;
  // The build needs the dev dependencies (TypeScript, Nest's CLI) even where NODE_ENV=production
  // would make npm leave them out.
  run('npm', [fs.existsSync(lockfile) ? 'ci' : 'install', '--include=dev'], 'installing node packages');
  const now = new Date();
  fs.utimesSync(nodeModules, now, now); // npm may leave the folder's own mtime alone
}

/** True when a user other than the owner may run `file` (o+x on it and on every folder above). */
function reachableByOthers(file) {
  try {
    let current = fs.realpathSync(file);
    if ((fs.statSync(current).mode & 0o005) !== 0o005) return false;
    for (let dir = path.dirname(current); ; dir = path.dirname(dir)) {
      if ((fs.statSync(dir).mode & 0o001) === 0) return false;
      if (path.dirname(dir) === dir) return true;
    }
  } catch {
    return false;
  }
}

/** The interpreter's own file and its standard library folder. */
function interpreterPaths(python) {
  const probe = spawnSync(python, ['-c', 'import os, sys; print(os.path.realpath(sys.executable)); print(sys.base_prefix)'], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim().split('\n') : [];
}

/**
 * The Python the venv is made from. Run as root, the worker starts kernels as unprivileged
 * users (python/kernelfleet_sandbox.py), who must be able to run the venv's interpreter: an
 * interpreter under a private home (pyenv in /root) is passed over for /usr/bin/python3.
 */
function basePython() {
  if (process.env.KERNELFLEET_BASE_PYTHON) return process.env.KERNELFLEET_BASE_PYTHON;
  const reachable = (python) => {
    const paths = interpreterPaths(python);
    return paths.length === 2 && reachableByOthers(paths[0]) && reachableByOthers(path.join(paths[1], 'lib'));
  };
  if (process.getuid?.() !== 0 || reachable('python3')) return 'python3';
  if (fs.existsSync('/usr/bin/python3') && reachable('/usr/bin/python3')) {
    log('python3 lives where sandboxed kernels cannot reach it; using /usr/bin/python3 for .venv');
    return '/usr/bin/python3';
  }
  log('warning: python3 lives where sandboxed kernels cannot reach it; kernels will run as this user');
  return 'python3';
}

function checkSystemPython(python) {
  const probe = spawnSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  const install = 'install it with `apt-get install python3 python3-venv` (Debian/Ubuntu) or `brew install python` (macOS)';
  if (probe.error || probe.status !== 0) fail(`python3 was not found; kernelfleet needs Python ${MIN_PYTHON.join('.')}+: ${install}`);
  const [major, minor] = probe.stdout.trim().split('.').map(Number);
  if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
    fail(`python3 is ${probe.stdout.trim()}; kernelfleet needs Python ${MIN_PYTHON.join('.')}+: ${install}`);
  }
}

/** .venv from the pinned python/requirements.txt; a sha256 stamp tells when it is out of date. */
function ensureVenv() {
  if (process.env.KERNELFLEET_PYTHON) return log(`KERNELFLEET_PYTHON is set: not managing .venv`);
  const python = path.join(VENV, 'bin', 'python');
  const base = basePython();
  const wanted = `${sha256(REQUIREMENTS)} ${base}`;
  const stamp = fs.existsSync(STAMP) ? fs.readFileSync(STAMP, 'utf8').trim() : '';
  if (fs.existsSync(python) && stamp === wanted) return;
  checkSystemPython(base);
  run(base, ['-m', 'venv', '--clear', VENV], 'creating .venv (if ensurepip is missing: apt-get install python3-venv)');
  run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-r', REQUIREMENTS], 'installing python/requirements.txt');
  fs.writeFileSync(STAMP, `${wanted}\n`);
}

function buildTypescript() {
  run('npm', ['run', '-s', 'build'], 'building');
}

/**
 * Resolves when `REDIS_URL` answers PING. A Redis Cluster (`redis+cluster://[auth@]h:p,h:p`)
 * answers when one of its seed nodes does (the apps learn the other nodes from it).
 */
async function pingRedisUrl(url) {
  const cluster = /^(rediss?)\+cluster:\/\/(?:(.*)@)?([^@]*)$/.exec(url);
  if (!cluster) return pingRedis(url);
  const [, scheme, auth, hosts] = cluster;
  let lastError = new Error('no host:port in the URL');
  for (const node of hosts.replace(/\/$/, '').split(',').filter(Boolean)) {
    try {
      return await pingRedis(`${scheme}://${auth ? `${auth}@` : ''}${node.trim()}`);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

function portIsFree(port, host) {
  return new Promise((resolve) => {
    const server = net.createServer().once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** GET `url` → status code, or 0 when nothing answers. */
function httpStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2_000 }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('timeout', () => req.destroy()).on('error', () => resolve(0));
  });
}

const children = [];
let stopping = false;

/** The apps log JSON lines (docs/operations.md); on a terminal they read better as text. */
const QUIET_FIELDS = new Set(['level', 'time', 'msg', 'app', 'pid', 'workerId', 'context', 'lifecycle']);
function readable(line) {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (!entry || typeof entry.msg !== 'string') return line;
  const extra = Object.entries(entry).filter(([k]) => !QUIET_FIELDS.has(k) && k !== 'stack');
  const fields = extra.length ? ` (${extra.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')})` : '';
  const context = entry.context ? `${entry.context}: ` : '';
  return `${String(entry.level).padEnd(5)} ${context}${entry.msg}${fields}${entry.stack ? `\n${entry.stack}` : ''}`;
}

/**
 * Spawns a child in its own process group (Ctrl-C reaches only us) and prefixes its output lines.
 * `stdin`: 'pipe' for a child that reads its config there (our Redis), else 'ignore'.
 */
function startChild(name, command, args, env = process.env, stdin = 'ignore') {
  const proc = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: [stdin, 'pipe', 'pipe'] });
  const child = { name, proc, ready: false };
  child.exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve(signal ?? `exit code ${code}`));
    proc.once('error', (error) => resolve(error.message));
  });
  for (const [input, output] of [[proc.stdout, process.stdout], [proc.stderr, process.stderr]]) {
    readline.createInterface({ input, crlfDelay: Infinity }).on('line', (line) => {
      output.write(`[${name}] ${output.isTTY ? readable(line) : line}\n`);
      if (/\bworker \S+ ready\b/.test(line.replace(/\x1b\[[0-9;]*m/g, ''))) child.ready = true;
    });
  }
  void child.exited.then((how) => {
    if (stopping) return;
    log(`${name} stopped unexpectedly (${how}); stopping everything`);
    void stopEverything(1);
  });
  children.push(child);
  return child;
}

const isRunning = (child) => Boolean(child.proc.pid) && child.proc.exitCode === null && child.proc.signalCode === null;
function signalGroup(child, signal) {
  try { process.kill(-child.proc.pid, signal); } catch { /* already gone */ }
}

async function stopChild(child) {
  if (!isRunning(child)) return;
  child.proc.kill('SIGTERM');
  const killer = setTimeout(() => {
    log(`${child.name} did not stop within ${STOP_GRACE_MS / 1000} s: SIGKILL`);
    signalGroup(child, 'SIGKILL');
  }, STOP_GRACE_MS);
  await child.exited;
  clearTimeout(killer);
}

/** Workers and api first (they still talk to Redis while stopping), then our Redis. */
async function stopEverything(exitCode) {
  if (stopping) return;
  stopping = true;
  await Promise.all(children.filter((c) => c.name !== 'redis').map(stopChild));
  await Promise.all(children.filter((c) => c.name === 'redis').map(stopChild));
  process.exit(exitCode);
}

function stopOnSignals() {
  // With `npm start | tee log`, Ctrl-C also ends tee: a closed pipe must not abort the shutdown.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (stopping) return log('still stopping (send SIGKILL to abandon the children)');
      log(`${signal}: stopping workers, api and redis`);
      void stopEverything(0);
    });
  }
  process.on('exit', () => children.filter(isRunning).forEach((c) => signalGroup(c, 'SIGKILL')));
}

async function startRedis() {
  if (process.env.REDIS_URL) {
    const shown = process.env.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@');
    await pingRedisUrl(process.env.REDIS_URL).catch((e) => fail(`REDIS_URL ${shown} does not answer PING: ${e.message}`));
    return process.env.REDIS_URL;
  }
  // Password-protected (kernels share this host): scripts/embedded-redis.js.
  const redis = await startEmbeddedRedis({
    stateDir: STATE_DIR,
    spawnServer: (command, args) => startChild('redis', command, args, process.env, 'pipe').proc,
  });
  return redis.url;
}

/** API_KEYS from the environment, else one local key kept in .kernelfleet/local-api-key. */
function apiKeys() {
  if (process.env.API_KEYS) return process.env.API_KEYS;
  const file = path.join(STATE_DIR, 'local-api-key');
  const saved = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
  if (/^local:[0-9a-f]{32}$/.test(saved)) return saved;
  const generated = `local:${crypto.randomBytes(16).toString('hex')}`;
  fs.mkdirSync(STATE_DIR, { recursive: true });
  fs.writeFileSync(file, `${generated}\n`, { mode: 0o600 });
  return generated;
}

async function waitUntilReady(apiUrl, workers) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while ((await httpStatus(`${apiUrl}/health/ready`)) !== 200 || !workers.every((w) => w.ready)) {
    if (Date.now() > deadline) {
      const waiting = [...workers.filter((w) => !w.ready).map((w) => w.name), 'api /health/ready'];
      fail(`not ready after ${READY_TIMEOUT_MS / 1000} s (waiting for ${waiting.join(', ')})`);
    }
    await sleep(250);
  }
}

function printBanner(apiUrl, keys, workerCount, redisUrl) {
  const key = keys.split(',')[0].trim().replace(/^[^:]*:/, '');
  const auth = shellQuote(`Authorization: Bearer ${key}`);
  const json = shellQuote('Content-Type: application/json');
  const submit = (query, code) => `curl -s -X POST ${shellQuote(`${apiUrl}/v1/sessions/demo/executions${query}`)} -H ${auth} -H ${json} -d ${shellQuote(JSON.stringify({ code }))}`;
  const keyOrigin = process.env.API_KEYS ? 'from API_KEYS' : 'kept in .kernelfleet/local-api-key';
  process.stdout.write([
    '',
    `kernelfleet is running: api + ${workerCount} worker(s). Ctrl-C stops everything.`,
    `  API URL  ${apiUrl}`,
    `  API key  ${key}  (${keyOrigin})`,
    process.env.REDIS_URL
      ? `  Redis    ${redisUrl.replace(/\/\/[^@/]*@/, '//***@')}  (REDIS_URL for \`npx kernelfleet keys\` and \`npx kernelfleet quotas\`)`
      : `  Redis    REDIS_URL=${shellQuote(redisUrl)}  (for \`npx kernelfleet keys\` and \`npx kernelfleet quotas\`; the password is kept in .kernelfleet/${PASSWORD_FILE})`,
    '',
    'From a shell or a program (the CLI and @kernelfleet/client, docs/client.md):',
    `  export KERNELFLEET_URL=${shellQuote(apiUrl)} KERNELFLEET_API_KEY=${shellQuote(key)}`,
    "  echo 'print(6*7)' | npx kernelfleet run --session demo",
    '',
    'Or over HTTP: run Python and wait for the result (result.output holds what it printed):',
    `  ${submit('?wait=true', 'print(6*7)')}`,
    '',
    'Stream events (SSE): submit asking for the event stream, which the answer then is:',
    `  ${submit('', 'import time\nfor i in range(5):\n    print(i, flush=True); time.sleep(1)').replace('curl -s ', "curl -sN -H 'Accept: text/event-stream' ")}`,
    'Or follow any execution by its id (the 202 answer and Location name it; Last-Event-ID resumes):',
    `  curl -sN -H ${auth} ${shellQuote(`${apiUrl}/v1/executions/<executionId>/events`)}`,
    '',
  ].join('\n') + '\n');
}

/**
 * As root the workers wall kernels off with nftables (docs/security.md) and refuse to start
 * without it: say so before anything starts. Not root, they say on start that kernels can reach
 * this machine's services.
 */
function checkKernelWalls() {
  const walled = process.getuid?.() === 0 && (process.env.KERNEL_SANDBOX ?? 'auto') === 'auto' && !process.env.JUPYTER_URL;
  if (!walled || process.env.SINGLE_TENANT_DEV === 'true') return;
  if (spawnSync('nft', ['--version']).error) {
    fail('nft was not found. As root, workers keep kernels off this machine\'s services with nftables: install it (`apt-get install nftables`), or set SINGLE_TENANT_DEV=true for a single-tenant development setup.');
  }
}

function workerCountFromEnv() {
  const count = Number(process.env.WORKERS ?? 1);
  if (!Number.isInteger(count) || count < 1 || count > 64) fail(`WORKERS must be an integer from 1 to 64, not ${process.env.WORKERS}`);
  return count;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.some((a) => a !== '--check')) fail('usage: node scripts/start.js [--check]');
  ensureNodeModules();
  ensureVenv();
  buildTypescript();
  if (args.includes('--check')) return log('bootstrap complete (node_modules, .venv, dist/)');

  const workerCount = workerCountFromEnv();
  checkKernelWalls();
  const port = process.env.PORT ?? '8080';
  const host = process.env.HOST ?? '127.0.0.1';
  if (!(await portIsFree(Number(port), host))) fail(`port ${port} is already in use: stop what uses it or set PORT`);
  stopOnSignals();
  const redisUrl = await startRedis();
  const keys = apiKeys();
  const node = (app) => [process.execPath, ['-r', './scripts/paths.js', `dist/apps/${app}/src/main.js`]];
  const env = { ...process.env, REDIS_URL: redisUrl };
  startChild('api', ...node('api'), { ...env, PORT: port, HOST: host, API_KEYS: keys });
  const workers = [];
  // One metrics port each on this host: METRICS_PORT (default 9464), +1, +2… (0: none).
  const metricsBase = Number(process.env.METRICS_PORT ?? 9464);
  for (let n = 1; n <= workerCount; n++) {
    const metricsPort = metricsBase === 0 ? 0 : metricsBase + n - 1;
    workers.push(startChild(`worker-${n}`, ...node('worker'), { ...env, WORKER_ID: `local-${n}`, METRICS_PORT: String(metricsPort) }));
  }

  const urlHost = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const apiUrl = `http://${urlHost}:${port}`;
  log(`waiting for the api and ${workerCount} worker(s) to be ready (up to ${READY_TIMEOUT_MS / 1000} s)`);
  await waitUntilReady(apiUrl, workers);
  printBanner(apiUrl, keys, workerCount, redisUrl);
}

main().catch((error) => {
  log(error instanceof StartError || error instanceof RedisStartError ? error.message : error.stack);
  void stopEverything(1);
});
