import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import Redis from 'ioredis';
import { throughput } from './app-snapshot';

/** The processes of a bench's stack, by their command lines. */
export const STACK_PARTS = {
  api: /apps\/api\/src\/main\.js/,
  worker: /apps\/worker\/src\/main\.js/,
  jupyter: /kernelfleet_jupyter|jupyter[-_]server/,
  kernels: /ipykernel_launcher|kernelfleet_sandbox/,
};

/** One process as /proc shows it. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  cmdline: string;
  /** User + system CPU time so far. */
  cpuSeconds: number;
  rssBytes: number;
}

let ticksPerSecond: number | undefined;

/** Every process on the machine now (those that end while being read are left out). */
export function processes(): ProcessInfo[] {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): ppid is the 2nd, utime and stime
      // the 12th and 13th; rss (the 22nd) is in pages, so VmRSS from status instead.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1] ?? 0);
      found.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '),
        cpuSeconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond,
        rssBytes: rssKb * 1024,
      });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The pids of `roots` and of every process below them, as /proc shows them now. */
export function withDescendants(roots: number[]): number[] {
  const all = processes();
  const found = [...roots];
  for (let i = 0; i < found.length; i++) for (const p of all) if (p.ppid === found[i]) found.push(p.pid);
  return found;
}

/** CPU seconds of the processes whose command line matches each pattern. */
export function cpuSecondsOf<K extends string>(patterns: Record<K, RegExp>): Record<K, number> {
  const totals = Object.fromEntries(Object.keys(patterns).map((k) => [k, 0])) as Record<K, number>;
  for (const p of processes()) {
    for (const name of Object.keys(patterns) as K[]) if (patterns[name].test(p.cmdline)) totals[name] += p.cpuSeconds;
  }
  return totals;
}

/** CPU seconds Redis has used so far (`INFO cpu`, user + system). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const text = (await redis.info('cpu')) as string;
  const field = (f: string) => Number(new RegExp(`${f}:([\\d.]+)`).exec(text)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

export interface CpuPerExecution {
  api: number;
  worker: number;
  redis: number;
  jupyter: number;
  kernels: number;
  /** This process: the load generator (and, in a raw loop, the kernels' `@jupyterlab/services` client). */
  load: number;
}

/** The CPU milliseconds per execution of every part together. */
export function totalOf(cpu: CpuPerExecution): number {
  return cpu.api + cpu.worker + cpu.redis + cpu.jupyter + cpu.kernels + cpu.load;
}

/**
 * Runs `load` and answers the CPU milliseconds each part spent per execution meanwhile (`load`
 * answers how many executions it ran). Everything on the machine that matches counts: run it
 * on a stack that is alone.
 */
export async function cpuPerExecution(redisUrl: string, load: () => Promise<number>): Promise<{ executions: number; perExecution: CpuPerExecution }> {
  const redis = new Redis(redisUrl);
  try {
    const own = () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    };
    const before = { redis: await redisCpuSeconds(redis), load: own(), ...cpuSecondsOf(STACK_PARTS) };
    const executions = await load();
    const after = { redis: await redisCpuSeconds(redis), load: own(), ...cpuSecondsOf(STACK_PARTS) };
    const per = (k: keyof CpuPerExecution) => (executions ? ((after[k] - before[k]) * 1000) / executions : 0);
    return {
      executions,
      perExecution: { api: per('api'), worker: per('worker'), redis: per('redis'), jupyter: per('jupyter'), kernels: per('kernels'), load: per('load') },
    };
  } finally {
    redis.disconnect();
  }
}

/** `throughput`'s loops, with the CPU every part spent per execution meanwhile (`cpuPerExecution`). */
export async function throughputWithCpu(
  redisUrl: string,
  parallel: number,
  ms: number,
  once: (lane: number) => Promise<void>,
): Promise<{ rate: number; cpu: CpuPerExecution }> {
  let rate = 0;
  const { perExecution } = await cpuPerExecution(redisUrl, async () => {
    const run = await throughput(parallel, ms, once);
    rate = run.rate;
    return run.done;
  });
  return { rate, cpu: perExecution };
}
