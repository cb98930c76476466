import { chmodSync, cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRedis } from '../test/support/redis-server';

const ROOT = join(__dirname, '..');

/**
 * Copies the compiled apps (dist/, scripts/, python/, libs/ for the Lua scripts; node_modules and .venv linked) to a
 * temporary directory and points the test Stack at it (KF_APP_ROOT), so every process of a
 * long run — replacements started minutes later included — runs the build the run began with,
 * even when dist/ is rebuilt meanwhile. Answers a function that removes the copy.
 */
export function snapshotApps(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kf-apps-'));
  chmodSync(dir, 0o711); // sandboxed kernels (users of their own) pass through to .venv
  for (const part of ['dist', 'scripts', 'python', 'libs']) cpSync(join(ROOT, part), join(dir, part), { recursive: true });
  for (const link of ['node_modules', '.venv']) symlinkSync(join(ROOT, link), join(dir, link));
  process.env.KF_APP_ROOT = dir;
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove); // also when the run fails before its own clean-up
  return { dir, remove };
}

/**
 * What every benchmark does first: quiet @jupyterlab/services (it narrates every websocket on
 * console.debug; BENCH_DEBUG keeps it), run a snapshot of the apps, and start a Redis unless
 * KF_TEST_REDIS_URL names one. Answers the venv's Python and the clean-up.
 */
export async function prepareBench(): Promise<{ python: string; cleanUp: () => Promise<void> }> {
  if (!process.env.BENCH_DEBUG) console.debug = () => undefined;
  const apps = process.env.KF_APP_ROOT ? undefined : snapshotApps();
  const redis = process.env.KF_TEST_REDIS_URL ? undefined : await TestRedis.start();
  process.env.KF_TEST_REDIS_URL ??= redis!.url;
  const python = process.env.KERNELFLEET_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');
  return {
    python,
    cleanUp: async () => {
      await redis?.stop();
      apps?.remove();
    },
  };
}

/** Prints rows under a header as a table of fixed-width columns. */
export function printTable(widths: number[], header: string[], rows: string[][]): void {
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of rows) console.log(line(row));
}

/** Executions per second with `parallel` independent loops for `ms` milliseconds, and how many ran. */
export async function throughput(parallel: number, ms: number, once: (lane: number) => Promise<void>): Promise<{ rate: number; done: number }> {
  let done = 0;
  const until = Date.now() + ms;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: parallel }, async (_, lane) => {
      while (Date.now() < until) {
        await once(lane);
        done += 1;
      }
    }),
  );
  return { rate: (done * 1000) / (Date.now() - start), done };
}

/** Runs `once` n times in a row; answers each run's time in milliseconds. */
export async function timeEach(n: number, once: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await once();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return samples;
}

/** Runs a benchmark's `main` and ends the process: 0 (or the exit code it set), 1 on an error. */
export function runMain(main: () => Promise<void>): void {
  void main().then(
    () => process.exit(process.exitCode ?? 0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/**
 * `fn(0)` … `fn(n - 1)`, `size` at a time, answers in order. For kernel starts: each costs about
 * 0.6 s of CPU here, and dozens at once starve everything else on the machine past its timeouts.
 */
export async function inBatches<T>(n: number, size: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let next = 0; next < n; next += size) {
    results.push(...(await Promise.all(Array.from({ length: Math.min(size, n - next) }, (_, i) => fn(next + i)))));
  }
  return results;
}
