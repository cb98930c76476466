/**
 * `npm run bench:profile`: where the CPU goes under load. One api and one worker
 * (WORKER_CONCURRENCY=16) on a Redis of their own, both under `node --cpu-prof`; 16 sessions run
 * `1+1` back to back (wait=true) for PROFILE_MS (default 10 s). Prints the CPU seconds of each
 * part (api, worker, Redis, Jupyter server, kernels) per execution, then the api's and the
 * worker's self time by where the code lives (our apps and libs by file, packages by name, Node's
 * own internals, garbage collection). The .cpuprofile files stay in the printed folder (open them
 * in Chrome's DevTools for the call trees).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { TestRedis } from '../test/support/redis-server';
import { Stack } from '../test/support/stack';
import { runMain, snapshotApps } from './app-snapshot';

const PROFILE_MS = Number(process.env.PROFILE_MS ?? 10_000);
const SESSIONS = 16;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: our file, a package, Node itself, or V8's pseudo-frames. */
function placeOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const ours = /\/dist\/((?:apps|libs)\/.*)$/.exec(url);
  if (ours) return ours[1];
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url;
}

/** Self time (ms) by place, and the total sampled time including idle. */
function selfTimeByPlace(profile: CpuProfile): { byPlace: Map<string, number>; totalMs: number } {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byPlace = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    const place = placeOf(frames.get(id)!);
    byPlace.set(place, (byPlace.get(place) ?? 0) + ms);
  });
  return { byPlace, totalMs };
}

/** CPU seconds (user + system, from /proc) of the processes whose command line matches each pattern. */
function cpuSecondsOf<K extends string>(patterns: Record<K, RegExp>): Record<K, number> {
  const totals = Object.fromEntries(Object.keys(patterns).map((k) => [k, 0])) as Record<K, number>;
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmdline: string;
    let stat: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
    for (const name of Object.keys(patterns) as K[]) if (patterns[name].test(cmdline)) totals[name] += seconds;
  }
  return totals;
}

async function main(): Promise<void> {
  const apps = process.env.KF_APP_ROOT ? undefined : snapshotApps();
  const redis = await TestRedis.start();
  try {
    process.env.KF_TEST_REDIS_URL = redis.url;
    await profileUnderLoad(redis.url);
  } finally {
    await redis.stop();
    apps?.remove();
  }
}

async function profileUnderLoad(redisUrl: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kf-profile-'));
  const profiled = (name: string) => ({ KF_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${join(dir, name)}` });
  const stack = await Stack.start({ apiEnv: profiled('api'), workerEnv: { ...profiled('worker'), WORKER_CONCURRENCY: String(SESSIONS) } });
  const info = new Redis(redisUrl);
  const redisCpu = async () => {
    const text = (await info.info('cpu')) as string;
    const field = (f: string) => Number(new RegExp(`${f}:([\\d.]+)`).exec(text)?.[1] ?? 0);
    return field('used_cpu_sys') + field('used_cpu_user');
  };
  // The processes of this run, by their command lines.
  const parts = {
    api: /apps\/api\/src\/main\.js/,
    worker: /apps\/worker\/src\/main\.js/,
    jupyter: /kernelfleet_jupyter|jupyter[-_]server/,
    kernels: /ipykernel_launcher|kernelfleet_sandbox/,
  };
  let done = 0;
  try {
    await Promise.all(Array.from({ length: SESSIONS }, (_, i) => stack.run(`profile-${i}`, { code: '1+1' })));
    const before = { redis: await redisCpu(), ...cpuSecondsOf(parts) };
    const started = Date.now();
    const until = started + PROFILE_MS;
    await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        while (Date.now() < until) {
          const execution = await stack.run(`profile-${i}`, { code: '1+1' });
          if (execution.status !== 'completed') throw new Error(`execution ${execution.status}`);
          done += 1;
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const after = { redis: await redisCpu(), ...cpuSecondsOf(parts) };
    await stack.stop();

    console.log(`${done} executions in ${seconds.toFixed(1)} s (${(done / seconds).toFixed(0)}/s), ${SESSIONS} sessions; profiles in ${dir}`);
    const perExec = (cpuSeconds: number) => `${((cpuSeconds * 1000) / done).toFixed(2)} ms`;
    for (const name of ['api', 'worker']) {
      const file = readdirSync(join(dir, name)).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no profile from the ${name}`);
      const { byPlace, totalMs } = selfTimeByPlace(JSON.parse(readFileSync(join(dir, name, file), 'utf8')) as CpuProfile);
      const busy = totalMs - (byPlace.get('(idle)') ?? 0);
      const top = [...byPlace].filter(([place]) => place !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 14);
      console.log(`\n${name}: self time by place, of ${(busy / 1000).toFixed(2)} s busy (start-up included)`);
      for (const [place, ms] of top) console.log(`  ${((100 * ms) / busy).toFixed(1).padStart(5)} %  ${place}`);
    }
    console.log('\nCPU per execution during the load');
    for (const part of ['api', 'worker', 'jupyter', 'kernels'] as const) {
      console.log(`  ${part.padEnd(8)} ${perExec(after[part] - before[part])}`);
    }
    console.log(`  ${'redis'.padEnd(8)} ${perExec(after.redis - before.redis)} (INFO cpu)`);
  } finally {
    info.disconnect();
    await stack.stop();
  }
}

runMain(main);
