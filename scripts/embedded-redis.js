'use strict';
/**
 * The Redis `npm start` runs when REDIS_URL is unset (scripts/start.js). Kernels run untrusted
 * code on the same host and could reach 127.0.0.1, so it requires a password: 32 random hex
 * characters kept in `<state dir>/redis-password` (mode 0600, reused on later starts). The
 * password reaches redis-server on its stdin (`redis-server -`), never on a command line
 * (/proc/<pid>/cmdline is world-readable). Node built-ins only: start.js runs before `npm install`.
 */
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const tls = require('node:tls');

const PASSWORD_FILE = 'redis-password';
const PASSWORD = /^[0-9a-f]{32}$/;
const READY_TIMEOUT_MS = 10_000;

/** An error whose message is for the user as is (no stack trace). */
class RedisStartError extends Error {}

/** The password in `<stateDir>/redis-password`; a new one when the file is missing or not valid. */
function redisPassword(stateDir) {
  const file = path.join(stateDir, PASSWORD_FILE);
  const saved = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
  if (PASSWORD.test(saved)) {
    fs.chmodSync(file, 0o600);
    return saved;
  }
  const generated = crypto.randomBytes(16).toString('hex');
  fs.mkdirSync(stateDir, { recursive: true });
  // Written aside and renamed over: an old file's wider mode never holds the new password.
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, `${generated}\n`, { mode: 0o600 });
  fs.chmodSync(temporary, 0o600);
  fs.renameSync(temporary, file);
  return generated;
}

/** Resolves when the Redis at `url` answers PING (raw RESP; AUTH first if the URL has a password). */
function pingRedis(url, timeoutMs = 3_000) {
  const u = new URL(url);
  const target = { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port) || 6379 };
  const command = (...args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  const credentials = [u.username, u.password].filter(Boolean).map(decodeURIComponent);
  return new Promise((resolve, reject) => {
    const secure = u.protocol === 'rediss:';
    const socket = secure ? tls.connect({ ...target, servername: target.host }) : net.connect(target);
    const finish = (error) => { socket.destroy(); error ? reject(error) : resolve(); };
    let reply = '';
    socket.setTimeout(timeoutMs, () => finish(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.write(`${u.password ? command('AUTH', ...credentials) : ''}PING\r\n`);
    });
    socket.on('data', (chunk) => {
      reply += chunk;
      const error = reply.split('\r\n').find((line) => line.startsWith('-'));
      if (error) finish(new Error(`Redis answered ${error.slice(1)}`));
      else if (reply.includes('+PONG\r\n')) finish();
    });
    socket.on('error', finish);
    socket.on('close', () => finish(new Error('connection closed without +PONG')));
  });
}

function freeLoopbackPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => resolve(port)); });
  });
}

/** Spawns with stdin piped (the config goes there) and the output dropped. */
const spawnQuietly = (command, args) => spawn(command, args, { stdio: ['pipe', 'ignore', 'ignore'] });

/**
 * Starts redis-server on a free loopback port with the password of `stateDir` and data in
 * `<stateDir>/redis`, and resolves once it answers an authenticated PING, with
 * `url` = `redis://:<password>@127.0.0.1:<port>`. `spawnServer(command, args)` must return a
 * ChildProcess whose stdin is a pipe (start.js passes one that prefixes the server's output).
 */
async function startEmbeddedRedis({ stateDir, bin = 'redis-server', spawnServer = spawnQuietly }) {
  if (spawnSync(bin, ['--version']).error) {
    throw new RedisStartError(`${bin} was not found. Install it (\`apt-get install redis-server\` on Debian/Ubuntu, \`brew install redis\` on macOS) or set REDIS_URL.`);
  }
  const dataDir = path.join(stateDir, 'redis');
  fs.mkdirSync(dataDir, { recursive: true });
  const password = redisPassword(stateDir);
  const port = await freeLoopbackPort();
  // `-` first: the config comes from stdin, then these options (none of them secret).
  const proc = spawnServer(bin, [
    '-', '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes',
    '--save', '', '--appendonly', 'no', '--dir', dataDir, '--loglevel', 'warning',
  ]);
  proc.stdin.on('error', () => undefined); // it died before reading: the wait below says so
  proc.stdin.end(`requirepass ${password}\n`);
  const url = `redis://:${password}@127.0.0.1:${port}`;
  let lastError;
  for (const deadline = Date.now() + READY_TIMEOUT_MS; ; await new Promise((r) => setTimeout(r, 100))) {
    try {
      await pingRedis(url, 500);
      return { url, password, port, pid: proc.pid, proc };
    } catch (error) {
      lastError = error;
    }
    const exited = proc.exitCode ?? proc.signalCode;
    if (Date.now() > deadline || exited !== null) {
      if (exited === null) proc.kill('SIGKILL');
      const how = exited === null ? '' : ` (it exited: ${typeof exited === 'number' ? `exit code ${exited}` : exited})`;
      throw new RedisStartError(`redis-server did not answer PING within ${READY_TIMEOUT_MS / 1000} s${how}: ${lastError.message}`);
    }
  }
}

module.exports = { startEmbeddedRedis, redisPassword, pingRedis, freeLoopbackPort, RedisStartError, PASSWORD_FILE };
