import type Redis from 'ioredis';
import type { KeySpace, SessionRef } from './keys';

export type KernelState = 'none' | 'starting' | 'idle' | 'busy' | 'dead';

export interface SessionInfo {
  sessionId: string;
  workerId: string | null;
  kernel: { generation: number; state: KernelState };
  pending: number;
  lastActivityAt: number | null;
}

/** The session's kernel bookkeeping: which worker is its home, which kernel generation it is on. */
export class SessionRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: KeySpace,
    private readonly retentionSeconds: number,
  ) {}

  async get(ref: SessionRef): Promise<SessionInfo | null> {
    const [info, pending] = await Promise.all([
      this.redis.hgetall(this.keys.sessionInfo(ref)),
      this.redis.llen(this.keys.lane(ref)),
    ]);
    if (!info.lastActivityAt && pending === 0) return null;
    return {
      sessionId: ref.sessionId,
      workerId: info.home || null,
      kernel: { generation: Number(info.generation ?? 0), state: (info.kernelState as KernelState) ?? 'none' },
      pending,
      lastActivityAt: info.lastActivityAt ? Number(info.lastActivityAt) : null,
    };
  }

  async homeOf(ref: SessionRef): Promise<string | null> {
    return (await this.redis.hget(this.keys.sessionInfo(ref), 'home')) || null;
  }

  /** A worker starts a new kernel for the session: the next generation, homed on that worker. */
  async beginGeneration(ref: SessionRef, workerId: string): Promise<number> {
    const key = this.keys.sessionInfo(ref);
    const [[, generation]] = (await this.redis
      .multi()
      .hincrby(key, 'generation', 1)
      .hset(key, 'home', workerId, 'kernelState', 'starting')
      .expire(key, this.retentionSeconds)
      .exec()) as [[null, number], ...unknown[]];
    return generation;
  }

  async setKernelState(ref: SessionRef, state: KernelState): Promise<void> {
    await this.redis.hset(this.keys.sessionInfo(ref), 'kernelState', state);
  }

  /** The session no longer has a kernel anywhere (disposed, or its kernel was lost). */
  async clearHome(ref: SessionRef, state: KernelState = 'none'): Promise<void> {
    const key = this.keys.sessionInfo(ref);
    await this.redis.multi().hdel(key, 'home').hset(key, 'kernelState', state).exec();
  }
}
