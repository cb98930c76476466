/**
 * `npm run bench:files`: what session files (docs/files.md) cost, on one api and one worker.
 *
 * - Baselines in the same run: this machine's disk (1 GiB written to a temporary file with a
 *   Node write stream, then read back, no hashing) — the floor for a 1 GiB transfer; the raw
 *   kernel round trip of a warm `1+1` through @jupyterlab/services, no queue — the floor for the
 *   small operations; and one run of the file helper (python/kernelfleet_files.py, started from
 *   here as the worker starts it), which every file operation pays.
 * - A 1 GiB upload (`PUT`, Content-Length set, the body a pseudo-random 1 MiB block repeated and
 *   hashed as it goes: the bench never holds the file), then its download (`GET`, hashed as it
 *   comes), both checked by size and sha256, with the CPU seconds each process spent on it, the
 *   peak resident memory (VmHWM) of the api, the worker and the file helper, and Redis'
 *   `used_memory_peak`.
 * - Small operations after a warm-up, BENCH_FILES_SMALL (50) each, in alternating blocks so they
 *   share the noise: PUT and GET of 1 KiB, a list, the raw round trip, the helper alone and a
 *   warm `1+1` end to end (`wait=true`) on the same session.
 *
 * Prints a table, then `files_upload_mib_s=… files_download_mib_s=… api_peak_rss_mib=…
 * worker_peak_rss_mib=… put_1k_p50_ms=…`. BENCH_FILES_MIB (1024) shortens the big transfers.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { JupyterServer, KernelClient, kernelEnvironment } from '@kernelfleet/kernel';
import { filePath, rawRequest } from '../test/support/files-client';
import { connectTestRedis } from '../test/support/redis-client';
import { Stack } from '../test/support/stack';
import { prepareBench, printTable, runMain, timeEach } from './app-snapshot';

const MIB = 1_048_576;
const BIG_MIB = Number(process.env.BENCH_FILES_MIB ?? 1024);
const BIG_BYTES = BIG_MIB * MIB;
const SMALL = Number(process.env.BENCH_FILES_SMALL ?? 50);
const BLOCKS = 5;
const WARMUP = 10;
const SESSION = 'bench-files';
const BIG_PATH = 'big/one-gib.bin';
const SMALL_PATH = 'small/one-kib.bin';
/** The limits the stack runs with: room for the big file (and the small one beside it). */
const FILE_MAX_BYTES = String(Math.round(1.1 * 1024 * MIB));
const SESSION_FILES_MAX_BYTES = String(3 * 1024 * MIB);
const HELPER_SAMPLE_MS = 200;
/** USER_HZ: the unit of /proc/<pid>/stat's times (100 on every Linux this runs on). */
const CLOCK_TICKS = 100;

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const p50 = (samples: number[]) => percentile(samples, 50);
const p99 = (samples: number[]) => percentile(samples, 99);
const ms = (n: number) => `${n.toFixed(2)} ms`;
const mib = (n: number) => `${n.toFixed(0)} MiB`;
const rate = (bytes: number, millis: number) => bytes / MIB / (millis / 1000);

/** Peak and current resident memory of a process, in MiB (from /proc/<pid>/status). */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

/** CPU seconds a process used (own, and its children's that were waited for), from /proc/<pid>/stat; NaN when unreadable. */
function cpuOf(pid: number): { own: number; children: number } {
  try {
    // The fields after the command's closing parenthesis, from field 3 (state) on.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ').map(Number);
    const tick = (i: number) => fields[i - 3] / CLOCK_TICKS;
    return { own: tick(14) + tick(15), children: tick(16) + tick(17) };
  } catch {
    return { own: NaN, children: NaN };
  }
}

/**
 * CPU seconds spent while `work` ran, by the api, the worker, the worker's children it reaped
 * meanwhile (the file helper: the Jupyter server and its kernels live on), Redis and this process.
 */
async function cpuDuring<T>(pids: { api: number; worker: number; redis: number }, work: () => Promise<T>): Promise<{ result: T; cpu: Record<string, number> }> {
  const sample = () => ({ api: cpuOf(pids.api).own, worker: cpuOf(pids.worker), redis: cpuOf(pids.redis).own, bench: process.cpuUsage() });
  const before = sample();
  const result = await work();
  // The client has its answer a moment before the worker reaps the helper (and counts its CPU).
  for (const until = Date.now() + 5_000; helpersOf(pids.worker).length > 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
  const after = sample();
  const bench = process.cpuUsage(before.bench);
  return {
    result,
    cpu: {
      api: after.api - before.api,
      worker: after.worker.own - before.worker.own,
      helper: after.worker.children - before.worker.children,
      redis: after.redis - before.redis,
      bench: (bench.user + bench.system) / 1e6,
    },
  };
}

const cpuText = (cpu: Record<string, number>) => `${cpu.api.toFixed(1)} / ${cpu.worker.toFixed(1)} / ${cpu.helper.toFixed(1)} / ${cpu.redis.toFixed(1)} / ${cpu.bench.toFixed(1)}`;

/** Redis' `used_memory` and `used_memory_peak`, in MiB. */
async function redisMemory(redis: ReturnType<typeof connectTestRedis>): Promise<{ now: number; peak: number }> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN) / MIB;
  return { now: field('used_memory'), peak: field('used_memory_peak') };
}

/** The worker's running file helpers (python/kernelfleet_files.py, its direct children). */
function helpersOf(workerPid: number): number[] {
  let children: number[];
  try {
    children = readFileSync(`/proc/${workerPid}/task/${workerPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kernelfleet_files.py');
    } catch {
      return false; // it ended between the listing and the read
    }
  });
}

/**
 * Watches the worker's file helpers (python/kernelfleet_files.py, direct children of the worker)
 * while a transfer runs; answers the largest VmHWM seen, in MiB (NaN when none was caught).
 */
function watchHelpers(workerPid: number): { stop: () => number } {
  let peak = NaN;
  const sample = () => {
    for (const pid of helpersOf(workerPid)) {
      try {
        const seen = memoryOf(pid).peak;
        if (!(seen <= peak)) peak = seen;
      } catch {
        // The helper ended between the listing and the read.
      }
    }
  };
  const timer = setInterval(sample, HELPER_SAMPLE_MS);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

/** The bytes of the big file: one pseudo-random 1 MiB block, `BIG_MIB` times, hashed as they go when `hash` is given. */
function* bigBody(block: Buffer, hash?: ReturnType<typeof createHash>): Generator<Buffer> {
  for (let i = 0; i < BIG_MIB; i++) {
    hash?.update(block);
    yield block;
  }
}

/** Writes every chunk to `out`, waiting whenever it asks to; stops when `out` closes early. */
async function writeAll(out: Writable, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (out.destroyed) throw new Error('the stream closed before the last byte was written');
    if (!out.write(chunk)) await drainedOrClosed(out);
  }
}

function drainedOrClosed(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done).off('close', done);
      resolve();
    };
    out.on('drain', done).on('close', done);
  });
}

/** The disk floor: the big file written through a Node write stream, then read back (no hashing: the disk alone). */
async function diskBaseline(block: Buffer): Promise<{ writeMs: number; readMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kf-bench-disk-'));
  const file = join(dir, 'big.bin');
  try {
    const writeStart = performance.now();
    const out = createWriteStream(file);
    await writeAll(out, bigBody(block));
    out.end();
    await once(out, 'close');
    const writeMs = performance.now() - writeStart;
    let bytes = 0;
    const readStart = performance.now();
    for await (const chunk of createReadStream(file, { highWaterMark: MIB })) bytes += (chunk as Buffer).length;
    const readMs = performance.now() - readStart;
    if (bytes !== BIG_BYTES) throw new Error(`the disk baseline wrote ${BIG_BYTES} bytes and read back ${bytes}`);
    return { writeMs, readMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What every file operation pays on the worker before any I/O: one run of the file helper (as the
 * worker starts it: `python -I -S`), here a `list` of a folder holding one small file.
 */
function helperListOnce(python: string, folder: string): () => Promise<void> {
  const script = join(__dirname, '..', 'python', 'kernelfleet_files.py');
  return () =>
    new Promise((resolve, reject) => {
      const child = spawn(python, ['-I', '-S', script, folder, 'list'], { stdio: ['ignore', 'pipe', 'inherit'], cwd: '/' });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 && out.includes('"files"') ? resolve() : reject(new Error(`the file helper exited ${code}: ${out}`))));
    });
}

/** Reads a whole (small) response body. */
async function bodyOf(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** PUTs the big file with Content-Length; answers the time and checks the answer's size and sha256. */
async function uploadBig(stack: Stack, block: Buffer): Promise<number> {
  const { hostname, port } = new URL(stack.url);
  const hash = createHash('sha256');
  const start = performance.now();
  const req = request({
    host: hostname,
    port,
    method: 'PUT',
    path: filePath(SESSION, BIG_PATH),
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/octet-stream', 'content-length': String(BIG_BYTES) },
  });
  const answered = once(req, 'response') as Promise<[IncomingMessage]>;
  // An early answer (a refusal) ends the upload: the writes then fail, the answer says why.
  const sent = writeAll(req, bigBody(block, hash)).then(() => req.end(), () => undefined);
  const [res] = await answered;
  const text = await bodyOf(res);
  const elapsed = performance.now() - start;
  await sent;
  if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`PUT of ${BIG_MIB} MiB answered ${res.statusCode}: ${text}`);
  const written = JSON.parse(text) as { size: number; sha256: string };
  const expected = hash.digest('hex');
  if (written.size !== BIG_BYTES || written.sha256 !== expected) {
    throw new Error(`PUT answered size ${written.size} sha256 ${written.sha256}; sent ${BIG_BYTES} bytes, sha256 ${expected}`);
  }
  return elapsed;
}

/** GETs the big file, hashing it as it comes; answers the time and checks Content-Length and sha256. */
async function downloadBig(stack: Stack, expectedSha256: string): Promise<number> {
  const { hostname, port } = new URL(stack.url);
  const start = performance.now();
  const req = request({ host: hostname, port, method: 'GET', path: filePath(SESSION, BIG_PATH), headers: { authorization: `Bearer ${stack.apiKey}` } });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  if (res.statusCode !== 200) throw new Error(`GET of ${BIG_PATH} answered ${res.statusCode}: ${await bodyOf(res)}`);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const elapsed = performance.now() - start;
  const length = Number(res.headers['content-length']);
  const digest = hash.digest('hex');
  if (length !== BIG_BYTES || bytes !== BIG_BYTES || digest !== expectedSha256) {
    throw new Error(`GET: Content-Length ${length}, ${bytes} bytes, sha256 ${digest}; expected ${BIG_BYTES} bytes, sha256 ${expectedSha256}`);
  }
  return elapsed;
}

async function main(): Promise<void> {
  const started = Date.now();
  const { python, cleanUp } = await prepareBench();
  const block = randomBytes(MIB);
  const bigHash = createHash('sha256');
  for (let i = 0; i < BIG_MIB; i++) bigHash.update(block);
  const bigSha256 = bigHash.digest('hex');

  // The disk floor first, on a machine with nothing else of ours running yet.
  const disk = await diskBaseline(block);

  const rootDir = mkdtempSync(join(tmpdir(), 'kf-bench-files-'));
  const server = await JupyterServer.start({ python, rootDir, env: kernelEnvironment(process.env) });
  const client = new KernelClient({ baseUrl: server.url, token: server.token });
  const redis = connectTestRedis();
  let stack: Stack | undefined;
  let sessionMade = false;
  try {
    const kernel = await client.startKernel({ timeoutMs: 30_000 });
    const raw = async () => {
      const outcome = await kernel.execute('1+1', { onStream: () => undefined, onDisplay: () => undefined });
      if (outcome.status !== 'ok') throw new Error(`raw 1+1 answered ${outcome.status}`);
    };
    await timeEach(WARMUP, raw);

    const limits = { FILE_MAX_BYTES };
    stack = await Stack.start({ apis: 1, workers: 1, apiEnv: limits, workerEnv: { ...limits, SESSION_FILES_MAX_BYTES } });
    const apiPid = stack.apis[0].child.pid!;
    const workerPid = stack.workers[0].child.pid!;
    const memory = () => ({ api: memoryOf(apiPid), worker: memoryOf(workerPid) });

    // The session gets its home (and kernel) from a small first file, so the big upload measures the transfer.
    const first = await rawRequest(stack.url, 'PUT', filePath(SESSION, SMALL_PATH), { key: stack.apiKey, body: randomBytes(1024) });
    if (first.status !== 201) throw new Error(`first PUT answered ${first.status}: ${first.body.toString()}`);
    sessionMade = true;
    const before = memory();
    const redisBefore = await redisMemory(redis);
    const redisPid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1] ?? NaN);
    const pids = { api: apiPid, worker: workerPid, redis: redisPid };

    let helpers = watchHelpers(workerPid);
    const { result: uploadMs, cpu: uploadCpu } = await cpuDuring(pids, () => uploadBig(stack!, block));
    const uploadHelperPeak = helpers.stop();
    const afterUpload = memory();
    const redisAfterUpload = await redisMemory(redis);

    helpers = watchHelpers(workerPid);
    const { result: downloadMs, cpu: downloadCpu } = await cpuDuring(pids, () => downloadBig(stack!, bigSha256));
    const downloadHelperPeak = helpers.stop();
    const afterDownload = memory();
    const redisAfterDownload = await redisMemory(redis);

    // Small operations, each next to the floor and to an execution, in alternating blocks.
    const small = randomBytes(1024);
    const smallSha256 = createHash('sha256').update(small).digest('hex');
    const putSmall = async () => {
      const res = await rawRequest(stack!.url, 'PUT', filePath(SESSION, SMALL_PATH), { key: stack!.apiKey, body: small });
      if (res.status !== 200 || res.json?.sha256 !== smallSha256) throw new Error(`PUT 1 KiB answered ${res.status}: ${res.body.toString()}`);
    };
    const getSmall = async () => {
      const res = await rawRequest(stack!.url, 'GET', filePath(SESSION, SMALL_PATH), { key: stack!.apiKey });
      if (res.status !== 200 || !res.body.equals(small)) throw new Error(`GET 1 KiB answered ${res.status} with ${res.body.length} bytes`);
    };
    const list = async () => {
      const res = await rawRequest(stack!.url, 'GET', `/v1/sessions/${SESSION}/files`, { key: stack!.apiKey });
      if (res.status !== 200 || res.json?.files?.length !== 2) throw new Error(`list answered ${res.status}: ${res.body.toString()}`);
    };
    const execute = async () => {
      const execution = await stack!.run(SESSION, { code: '1+1' });
      if (execution.status !== 'completed') throw new Error(`1+1 end to end ${execution.status}`);
    };
    const helperDir = mkdtempSync(join(rootDir, 'helper-'));
    writeFileSync(join(helperDir, 'one-kib.bin'), small);
    const helperAlone = helperListOnce(python, helperDir);
    const ops = { raw, helperAlone, execute, putSmall, getSmall, list };
    const samples = Object.fromEntries(Object.keys(ops).map((name) => [name, [] as number[]])) as Record<keyof typeof ops, number[]>;
    for (const op of Object.values(ops)) await timeEach(WARMUP, op);
    for (let round = 0; round < BLOCKS; round++) {
      for (const [name, op] of Object.entries(ops)) samples[name as keyof typeof ops].push(...(await timeEach(SMALL / BLOCKS, op)));
    }

    const uploadRate = rate(BIG_BYTES, uploadMs);
    const downloadRate = rate(BIG_BYTES, downloadMs);
    const diskWrite = rate(BIG_BYTES, disk.writeMs);
    const diskRead = rate(BIG_BYTES, disk.readMs);
    const rawP50 = p50(samples.raw);
    const executeP50 = p50(samples.execute);
    const apiPeak = Math.max(afterUpload.api.peak, afterDownload.api.peak);
    const workerPeak = Math.max(afterUpload.worker.peak, afterDownload.worker.peak);
    const x = (a: number, b: number) => `×${(a / b).toFixed(2)}`;
    const rows: string[][] = [
      [`disk: write ${BIG_MIB} MiB (Node write stream)`, `${diskWrite.toFixed(0)} MiB/s`, '', `${(disk.writeMs / 1000).toFixed(1)} s`],
      ['disk: read it back', `${diskRead.toFixed(0)} MiB/s`, '', `${(disk.readMs / 1000).toFixed(1)} s`],
      [`upload ${BIG_MIB} MiB (PUT, sha256 checked)`, `${uploadRate.toFixed(0)} MiB/s`, `disk write ${diskWrite.toFixed(0)} MiB/s`, `${x(uploadRate, diskWrite)}; ${(uploadMs / 1000).toFixed(1)} s`],
      [`download ${BIG_MIB} MiB (GET, sha256 checked)`, `${downloadRate.toFixed(0)} MiB/s`, `disk read ${diskRead.toFixed(0)} MiB/s`, `${x(downloadRate, diskRead)}; ${(downloadMs / 1000).toFixed(1)} s`],
      ['CPU s, upload: api / worker / helper / redis / bench', cpuText(uploadCpu), '', `wall ${(uploadMs / 1000).toFixed(1)} s, 2 cores`],
      ['CPU s, download: same order', cpuText(downloadCpu), '', `wall ${(downloadMs / 1000).toFixed(1)} s, 2 cores`],
      ['api peak RSS (VmHWM): before → upload → download', `${mib(before.api.peak)} → ${mib(afterUpload.api.peak)} → ${mib(afterDownload.api.peak)}`, '', `now ${mib(afterDownload.api.now)}`],
      ['worker peak RSS: before → upload → download', `${mib(before.worker.peak)} → ${mib(afterUpload.worker.peak)} → ${mib(afterDownload.worker.peak)}`, '', `now ${mib(afterDownload.worker.now)}`],
      ['file helper peak RSS: upload, download', `${mib(uploadHelperPeak)}, ${mib(downloadHelperPeak)}`, '', `sampled every ${HELPER_SAMPLE_MS} ms`],
      [
        'Redis used_memory_peak: before → upload → download',
        `${mib(redisBefore.peak)} → ${mib(redisAfterUpload.peak)} → ${mib(redisAfterDownload.peak)}`,
        '',
        `used now ${redisAfterDownload.now.toFixed(1)} MiB`,
      ],
      ['warm 1+1 round trip, raw (floor), p50', ms(rawP50), '', `p99 ${ms(p99(samples.raw))}, n=${samples.raw.length}`],
      ['file helper alone (spawn + list), p50', ms(p50(samples.helperAlone)), `raw ${ms(rawP50)}`, `${x(p50(samples.helperAlone), rawP50)}; p99 ${ms(p99(samples.helperAlone))}`],
      ['warm 1+1 end to end (wait=true), p50', ms(executeP50), `raw ${ms(rawP50)}`, `${x(executeP50, rawP50)}; p99 ${ms(p99(samples.execute))}`],
      ...(
        [
          ['PUT 1 KiB', samples.putSmall],
          ['GET 1 KiB', samples.getSmall],
          ['list (2 files)', samples.list],
        ] as const
      ).map(([name, s]) => [`${name}, p50`, ms(p50(s)), `raw ${ms(rawP50)}`, `${x(p50(s), rawP50)} raw, ${x(p50(s), executeP50)} 1+1; p99 ${ms(p99(s))}`]),
    ];
    printTable([52, 28, 22, 38], ['what', 'figure', 'baseline', 'ratio / note'], rows);
    console.log(`run took ${((Date.now() - started) / 1000).toFixed(0)} s (${SMALL} of each small operation after ${WARMUP} to warm up)`);
    console.log(
      `files_upload_mib_s=${uploadRate.toFixed(1)} files_download_mib_s=${downloadRate.toFixed(1)} ` +
        `api_peak_rss_mib=${apiPeak.toFixed(0)} worker_peak_rss_mib=${workerPeak.toFixed(0)} put_1k_p50_ms=${p50(samples.putSmall).toFixed(2)}`,
    );
    await kernel.shutdown();
    kernel.dispose();
  } finally {
    if (stack && sessionMade) {
      const res = await stack.request('DELETE', `/v1/sessions/${SESSION}`).catch((error: unknown) => ({ status: 0, text: String(error) }));
      if (res.status !== 200) console.error(`DELETE /v1/sessions/${SESSION} answered ${res.status}: ${res.text}`);
    }
    await stack?.stop();
    await server.stop();
    redis.disconnect();
    rmSync(rootDir, { recursive: true, force: true });
    await cleanUp();
  }
}

runMain(main);
