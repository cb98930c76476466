/**
 * `npm run bench:profile`: where the CPU goes under load. One api and one worker
 * (WORKER_CONCURRENCY=16) on a Redis of their own, both under `node --cpu-prof`; 16 sessions run
 * `1+1` back to back (wait=true) for PROFILE_MS (default 10 s). With PROFILE_LOAD=accepts the
 * load is submissions only instead (64 connections, `202`s, bench/costs.bench.ts), the worker
 * running what was accepted. Prints the CPU seconds of each
 * part (api, worker, Redis, Jupyter server, kernels) per execution, then the api's and the
 * worker's self time by where the code lives (our apps and libs by file, packages by name, Node's
 * own internals, garbage collection). The .cpuprofile files stay in the printed folder (open them
 * in Chrome's DevTools for the call trees).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRedis } from '../test/support/redis-server';
import { Stack } from '../test/support/stack';
import { runMain, snapshotApps } from './app-snapshot';
import { acceptsPerSecond, UNLIMITED_SUBMITS } from './costs.bench';
import { cpuPerExecution } from './process-cpu';

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
  const stack = await Stack.start({ apiEnv: { ...profiled('api'), ...UNLIMITED_SUBMITS }, workerEnv: { ...profiled('worker'), WORKER_CONCURRENCY: String(SESSIONS) } });
  try {
    await Promise.all(Array.from({ length: SESSIONS }, (_, i) => stack.run(`profile-${i}`, { code: '1+1' })));
    const started = Date.now();
    const until = started + PROFILE_MS;
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `profile-${i}`);
    const accepts = () => acceptsPerSecond(stack, { ms: PROFILE_MS, connections: 64, sessions }).then((rate) => Math.round((rate * PROFILE_MS) / 1000));
    const { executions, perExecution } = await cpuPerExecution(redisUrl, process.env.PROFILE_LOAD === 'accepts' ? accepts : async () => {
      let done = 0;
      await Promise.all(
        Array.from({ length: SESSIONS }, async (_, i) => {
          while (Date.now() < until) {
            const execution = await stack.run(`profile-${i}`, { code: '1+1' });
            if (execution.status !== 'completed') throw new Error(`execution ${execution.status}`);
            done += 1;
          }
        }),
      );
      return done;
    });
    const seconds = (Date.now() - started) / 1000;
    await stack.stop();

    console.log(`${executions} ${process.env.PROFILE_LOAD === 'accepts' ? 'accepts' : 'executions'} in ${seconds.toFixed(1)} s (${(executions / seconds).toFixed(0)}/s), ${SESSIONS} sessions; profiles in ${dir}`);
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
    const notes: Partial<Record<keyof typeof perExecution, string>> = { redis: ' (INFO cpu)', load: ' (this process, the load generator)' };
    for (const part of ['api', 'worker', 'jupyter', 'kernels', 'redis', 'load'] as const) {
      console.log(`  ${part.padEnd(8)} ${perExecution[part].toFixed(2)} ms${notes[part] ?? ''}`);
    }
  } finally {
    await stack.stop();
  }
}

runMain(main);
