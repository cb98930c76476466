#!/usr/bin/env node
'use strict';
/**
 * Readiness of the worker in this container (docker-compose healthcheck, Kubernetes
 * readinessProbe): exits 0 when the worker holds a live lease in Redis and is not draining, else
 * 1 with the reason on stderr. The worker is WORKER_ID, or else a registered worker named
 * `<hostname>-<pid>` (the id a worker gives itself when WORKER_ID is unset). Reads REDIS_URL and
 * KEY_PREFIX as the worker does. Node built-ins only.
 *
 * Not a liveness check: it fails while Redis is down, and a worker keeps its kernels through a
 * Redis outage (docs/redis-outage.md); restarting it then would lose them.
 */
const net = require('node:net');
const os = require('node:os');
const tls = require('node:tls');

const TIMEOUT_MS = 3_000;

/** RESP encoding of one command. */
const encode = (...args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/**
 * Parses one RESP reply from `buf` at `at` → [value, next offset], or undefined when incomplete.
 * Errors become Error values; arrays nest.
 */
function parseReply(buf, at = 0) {
  const end = buf.indexOf('\r\n', at);
  if (end < 0) return undefined;
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString('utf8', at + 1, end);
  if (type === '+') return [line, end + 2];
  if (type === '-') return [new Error(line), end + 2];
  if (type === ':') return [Number(line), end + 2];
  if (type === '$') {
    const length = Number(line);
    if (length < 0) return [null, end + 2];
    if (buf.length < end + 2 + length + 2) return undefined;
    return [buf.toString('utf8', end + 2, end + 2 + length), end + 2 + length + 2];
  }
  if (type === '*') {
    const count = Number(line);
    const items = [];
    let next = end + 2;
    for (let i = 0; i < count; i++) {
      const parsed = parseReply(buf, next);
      if (!parsed) return undefined;
      items.push(parsed[0]);
      next = parsed[1];
    }
    return [count < 0 ? null : items, next];
  }
  throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
}

/** A connection that sends commands one at a time and resolves each with its reply. */
function connect(url) {
  const u = new URL(url);
  const target = { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port) || 6379 };
  const secure = u.protocol === 'rediss:';
  const socket = secure ? tls.connect({ ...target, servername: target.host }) : net.connect(target);
  let buffer = Buffer.alloc(0);
  let waiting;
  socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`Redis did not answer within ${TIMEOUT_MS} ms`)));
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    const parsed = parseReply(buffer);
    if (!parsed || !waiting) return;
    buffer = buffer.subarray(parsed[1]);
    const { resolve } = waiting;
    waiting = undefined;
    resolve(parsed[0]);
  });
  const failed = new Promise((_, reject) => {
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('Redis closed the connection')));
  });
  failed.catch(() => undefined);
  const ready = new Promise((resolve) => socket.once(secure ? 'secureConnect' : 'connect', resolve));
  const command = async (...args) => {
    await Promise.race([ready, failed]);
    const reply = new Promise((resolve) => { waiting = { resolve }; });
    socket.write(encode(...args));
    const value = await Promise.race([reply, failed]);
    if (value instanceof Error) throw new Error(`Redis answered ${value.message}`);
    return value;
  };
  return { command, close: () => socket.destroy() };
}

async function probe(env) {
  const url = env.REDIS_URL || 'redis://127.0.0.1:6379';
  const prefix = env.KEY_PREFIX || 'kf';
  const redis = connect(url);
  try {
    const u = new URL(url);
    if (u.password) await redis.command('AUTH', ...[u.username, u.password].filter(Boolean).map(decodeURIComponent));
    let ids = env.WORKER_ID ? [env.WORKER_ID] : [];
    if (ids.length === 0) {
      const mine = `${os.hostname()}-`;
      ids = (await redis.command('ZRANGE', `${prefix}:workers`, '0', '-1')).filter((id) => id.startsWith(mine));
      if (ids.length === 0) return `no worker named ${mine}<pid> is registered`;
    }
    const reasons = [];
    for (const id of ids) {
      const raw = await redis.command('GET', `${prefix}:worker:${id}:lease`);
      if (raw === null) reasons.push(`worker ${id} holds no lease`);
      else if (JSON.parse(raw).draining) reasons.push(`worker ${id} is draining`);
      else return undefined;
    }
    return reasons.join('; ');
  } finally {
    redis.close();
  }
}

if (require.main === module) {
  probe(process.env).then(
    (reason) => {
      if (reason) process.stderr.write(`not ready: ${reason}\n`);
      process.exit(reason ? 1 : 0);
    },
    (error) => {
      process.stderr.write(`not ready: ${error.message}\n`);
      process.exit(1);
    },
  );
}

module.exports = { probe, parseReply };
