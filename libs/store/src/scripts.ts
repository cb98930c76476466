import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from './redis-connection';

/**
 * Our Lua scripts, one file each in ./scripts, named `<name>-<numberOfKeys>.lua`. A script gets
 * the shared preludes (`*.lib.lua`, below) it calls prepended, and those the preludes call in
 * turn. They are registered as ioredis commands, which EVALSHA and fall back to EVAL after a
 * Redis restart.
 */
const SCRIPT_FILES = [
  'accept-6', 'claim-4', 'finish-5', 'emit-2', 'request-cancel-1', 'rehome-1', 'requeue-1', 'release-owner-1',
  'admit-6', 'release-3', 'tool-call-open-3', 'tool-call-answer-3', 'tool-call-end-3', 'dispose-2', 'kernel-state-1',
  'code-sent-2', 'evict-2', 'fair-priority-1', 'submit-17', 'claim-running-6', 'finish-release-10',
] as const;
type ScriptName =
  | 'accept' | 'claim' | 'finish' | 'emit' | 'request-cancel' | 'rehome' | 'requeue' | 'release-owner' | 'admit' | 'release'
  | 'tool-call-open' | 'tool-call-answer' | 'tool-call-end' | 'dispose' | 'kernel-state' | 'code-sent' | 'evict' | 'fair-priority'
  | 'submit' | 'claim-running' | 'finish-release';

/**
 * Scripts whose keys span slots by design, run only on one Redis (not a Cluster): a step that
 * takes several round trips on a Cluster done in one (Submissions; the worker's claim and
 * finish, ExecutionRepository). Every other script keeps its keys in one slot
 * (cluster-slots.spec.ts).
 */
export const ONE_REDIS_ONLY_SCRIPTS: readonly ScriptName[] = ['submit', 'claim-running', 'finish-release'];

/** The preludes: what calls each, in an order where a prelude comes after those it calls. */
const PRELUDES = [
  { file: 'emit.lib.lua', uses: /\b(emit(Numbered)?|runningFollower)\(/ },
  { file: 'fair.lib.lua', uses: /\bfairPriority\(/ },
  { file: 'admit.lib.lua', uses: /\badmit\(/ },
  { file: 'accept.lib.lua', uses: /\baccept\(/ },
  { file: 'claim.lib.lua', uses: /\bclaimHead\(/ },
  { file: 'finish.lib.lua', uses: /\bfinishExecution\(/ },
  { file: 'release.lib.lua', uses: /\breleasePending\(/ },
] as const;

export type ScriptRunner = (name: ScriptName, keys: string[], args: (string | number)[]) => Promise<unknown>;

function scriptsDir(): string {
  const beside = join(__dirname, 'scripts');
  // Compiled output (dist/) has no .lua files; they stay in the source tree.
  return existsSync(beside) ? beside : beside.replace(`${join('dist', 'libs')}`, 'libs');
}

/** The ioredis command a script is registered as (`claim` → `kf_claim`). */
export function scriptCommand(name: string): string {
  return `kf_${name.replace(/-/g, '_')}`;
}

/** Registers the scripts on a connection (idempotent per connection) and returns a runner. */
export function registerScripts(redis: RedisClient): ScriptRunner {
  const dir = scriptsDir();
  const preludes = PRELUDES.map((p) => ({ uses: p.uses, lua: readFileSync(join(dir, p.file), 'utf8') }));
  for (const file of SCRIPT_FILES) {
    const [, name, keys] = /^(.*)-(\d+)$/.exec(file)!;
    // From the last prelude back: each one the script (or a prelude already taken) calls.
    let lua = readFileSync(join(dir, `${file}.lua`), 'utf8');
    for (const prelude of [...preludes].reverse()) {
      if (prelude.uses.test(lua)) lua = `${prelude.lua}\n${lua}`;
    }
    redis.defineCommand(scriptCommand(name), { numberOfKeys: Number(keys), lua });
  }
  return (name, keys, args) => {
    const command = (redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[scriptCommand(name)];
    return command.call(redis, ...keys, ...args);
  };
}
