import Redis from 'ioredis';

/** What Redis executed while something ran, as MONITOR saw it. */
export interface CommandCount {
  /** Every command, those run inside Lua scripts included. */
  total: number;
  /** Commands sent by clients over the network (each at most one round trip; pipelined ones share). */
  sent: number;
  /** Commands run inside scripts (EVAL/EVALSHA/FCALL). */
  inScripts: number;
  /** Script calls (EVAL, EVALSHA, FCALL and their _RO forms). */
  scripts: number;
  /** Commands by name (lower case), most frequent first. */
  byName: [string, number][];
  /** Commands sent, by the name of the connection that sent them (CLIENT SETNAME), most first. */
  sentBy: [string, number][];
}

const SCRIPT_CALLS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);

/**
 * Counts the commands a single Redis (not a cluster) runs while `during` runs, through MONITOR on
 * a connection of its own (its own commands are not counted). MONITOR reports commands run by
 * scripts with the source `lua`, so what clients send and what scripts do are told apart.
 */
export async function countRedisCommands(url: string, during: () => Promise<void>): Promise<CommandCount> {
  // monitor() opens a connection of its own in MONITOR mode; this one never connects.
  const monitor = await new Redis(url, { lazyConnect: true }).monitor();
  const byName = new Map<string, number>();
  const byAddress = new Map<string, number>();
  let sent = 0;
  let inScripts = 0;
  let scripts = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = String(args[0] ?? '').toLowerCase();
    byName.set(name, (byName.get(name) ?? 0) + 1);
    if (source === 'lua') inScripts += 1;
    else {
      sent += 1;
      byAddress.set(source, (byAddress.get(source) ?? 0) + 1);
    }
    if (SCRIPT_CALLS.has(name)) scripts += 1;
  });
  let names = new Map<string, string>();
  try {
    await during();
    // MONITOR lines trail the commands by a little: let the last ones arrive.
    await new Promise((r) => setTimeout(r, 100));
    names = await connectionNames(url);
  } finally {
    monitor.disconnect();
  }
  const sentBy = new Map<string, number>();
  for (const [address, count] of byAddress) {
    const name = names.get(address) || 'unnamed';
    sentBy.set(name, (sentBy.get(name) ?? 0) + count);
  }
  return { total: sent + inScripts, sent, inScripts, scripts, byName: mostFirst(byName), sentBy: mostFirst(sentBy) };
}

const mostFirst = (counts: Map<string, number>) => [...counts].sort((a, b) => b[1] - a[1]);

/** Client address → connection name, from CLIENT LIST (a connection of its own). */
async function connectionNames(url: string): Promise<Map<string, string>> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const list = (await client.call('CLIENT', 'LIST')) as string;
    const names = new Map<string, string>();
    for (const line of list.split('\n')) {
      const address = /\baddr=(\S+)/.exec(line)?.[1];
      if (address) names.set(address, /\bname=(\S*)/.exec(line)?.[1] ?? '');
    }
    return names;
  } finally {
    client.disconnect();
  }
}

/**
 * Redis commands per warm execution: `runOne` runs one warm execution (e.g. `1+1` with
 * wait=true in a session that already has its kernel), `n` times in a row while counted; the
 * counts are divided by `n`. The fleet's periodic work (leases, sweeps) runs meanwhile and is
 * included: a few commands a second, a small share of `n` executions of ~10 ms each.
 */
export async function commandsPerExecution(url: string, runOne: () => Promise<void>, n = 20): Promise<CommandCount> {
  const counted = await countRedisCommands(url, async () => {
    for (let i = 0; i < n; i++) await runOne();
  });
  const per = (x: number) => Math.round((x / n) * 10) / 10;
  return {
    total: per(counted.total),
    sent: per(counted.sent),
    inScripts: per(counted.inScripts),
    scripts: per(counted.scripts),
    byName: counted.byName.map(([name, count]) => [name, per(count)]),
    sentBy: counted.sentBy.map(([name, count]) => [name, per(count)]),
  };
}

/**
 * Redis commands of one warm `1+1` (wait=true), as measured by test/e2e/redis-cost.e2e-spec.ts and
 * printed by `npm run bench`: the guard fails above these by more than 10 %. Lower them when a
 * change makes an execution cheaper (docs/benchmarks.md).
 */
export const WARM_EXECUTION_COMMANDS = { total: 73.2, sent: 5.2 };

/**
 * The same for the client library's `executePython('1+1')` with no callbacks: an
 * Idempotency-Key (claimed in the accept's script) and the result alone on the event stream.
 */
export const CLIENT_EXECUTION_COMMANDS = { total: 75.3, sent: 5.3 };

/**
 * The same for `executePython('print(1)')` with `onChunk`: the output and the result on the
 * event stream of the submit, which this api process's channel brings (ApiProcessChannel).
 */
export const CLIENT_STREAMED_COMMANDS = { total: 78.4, sent: 5.4 };
