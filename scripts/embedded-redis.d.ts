/** Types of scripts/embedded-redis.js (plain CommonJS, for the tests that call it). */
import type { ChildProcess } from 'node:child_process';

export declare class RedisStartError extends Error {}

export declare const PASSWORD_FILE: string;

export interface EmbeddedRedis {
  /** `redis://:<password>@127.0.0.1:<port>` */
  url: string;
  password: string;
  port: number;
  pid: number | undefined;
  proc: ChildProcess;
}

export declare function startEmbeddedRedis(options: {
  stateDir: string;
  bin?: string;
  spawnServer?: (command: string, args: string[]) => ChildProcess;
}): Promise<EmbeddedRedis>;

export declare function redisPassword(stateDir: string): string;

export declare function pingRedis(url: string, timeoutMs?: number): Promise<void>;

export declare function freeLoopbackPort(): Promise<number>;
