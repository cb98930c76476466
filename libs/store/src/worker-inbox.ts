import type { RunExecutionJob } from '@kernelfleet/contracts';
import type { RedisClient } from './redis-connection';
import { decodeRef, encodeRef, type ExecutionRef, type KeySpace } from './keys';

/** How long one blocking pop waits before the consumer looks again (and may close). */
const BLOCK_SECONDS = 1;
/** Pause after a failed pop (Redis unreachable) before the next one. */
const RETRY_MS = 500;

/**
 * A worker's inbox: the lane heads of the sessions whose kernels it holds, in a sorted set of its
 * own (docs/architecture.md, "The warm path"). A lane head whose session has a live home goes
 * here instead of through a BullMQ queue: one ZADD to place it and one BZPOPMIN to take it,
 * where a BullMQ job cost about sixty commands. Only the worker itself ever takes from its inbox,
 * so BullMQ's locks would guard against nobody: when the worker is lost, its lease expires and
 * the reaper moves the inbox on (Failover), as it does the sessions.
 *
 * The score is the head's place in line: 0 for a head handed back (ahead of all), the fair-share
 * priority (whole seconds of the tenant's virtual clock, scripts/fair.lib.lua) with the
 * millisecond of dispatch as the tie-break, or the time of dispatch without fair share.
 */
export class WorkerInboxes {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  /** Places a lane head; a head already waiting there keeps its place (and false is answered). */
  async add(workerId: string, ref: ExecutionRef, priority: number | undefined, now = Date.now()): Promise<boolean> {
    return 1 === await this.redis.zadd(this.keys.workerInbox(workerId), 'NX', inboxScore(priority, now), encodeRef(ref));
  }

  /** The heads waiting in a worker's inbox, the first in line first. */
  async waiting(workerId: string): Promise<ExecutionRef[]> {
    const members = await this.redis.zrange(this.keys.workerInbox(workerId), 0, -1);
    return members.map(decodeRef).filter((ref): ref is ExecutionRef => ref !== null);
  }

  /** Takes a head out without running it (it moves elsewhere); false when the worker took it first. */
  async remove(workerId: string, ref: ExecutionRef): Promise<boolean> {
    return (await this.redis.zrem(this.keys.workerInbox(workerId), encodeRef(ref))) === 1;
  }

  async depth(workerId: string): Promise<number> {
    return this.redis.zcard(this.keys.workerInbox(workerId));
  }
}

/** Where a head goes in line (see WorkerInboxes): `priority` 0 is the front. submit-17.lua computes the same in Lua. */
export function inboxScore(priority: number | undefined, now: number): number {
  if (priority === undefined) return now;
  return priority === 0 ? 0 : priority * 1000 + (now % 1000);
}

/** Runs one head taken from the inbox; errors are the handler's to report. */
export type InboxHandler = (job: RunExecutionJob) => Promise<void>;

/**
 * Takes a worker's inbox, up to `concurrency` heads running at once, on a connection of its own
 * (a blocking pop holds it). A head popped is the worker's: if the worker dies before claiming
 * it, the execution is still queued at the head of its lane and the reaper hands it on with the
 * session. A pop whose reply a dropped connection lost is repaired by `reoffer` on reconnect.
 */
export class InboxConsumer {
  private readonly running = new Set<Promise<void>>();
  private loop?: Promise<void>;
  private closed = false;

  constructor(
    private readonly blocking: RedisClient,
    private readonly key: string,
    private readonly concurrency: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(handler: InboxHandler, reoffer: () => Promise<void>): void {
    if (this.loop || this.closed) return;
    // After a reconnect, a pop answered while the connection dropped may have taken a head
    // that never reached us: the worker's queued heads are placed again (a no-op for the rest).
    let connectedOnce = false;
    this.blocking.on('ready', () => {
      if (connectedOnce && !this.closed) reoffer().catch(this.onError);
      connectedOnce = true;
    });
    if (this.blocking.status === 'ready') connectedOnce = true;
    this.loop = this.take(handler);
  }

  /** Stops taking heads (within BLOCK_SECONDS); waits for the running ones unless `force`. */
  async close(force = false): Promise<void> {
    this.closed = true;
    if (force) this.blocking.disconnect();
    await this.loop;
    if (!force) await Promise.all(this.running);
    this.blocking.disconnect();
  }

  private async take(handler: InboxHandler): Promise<void> {
    while (!this.closed) {
      if (this.running.size >= this.concurrency) {
        await Promise.race(this.running);
        continue;
      }
      let popped: [string, string, string] | null;
      try {
        popped = (await this.blocking.bzpopmin(this.key, BLOCK_SECONDS)) as [string, string, string] | null;
      } catch (error) {
        // Closed, or the store closed the connection under us (shutdown): nothing more to take.
        if (this.closed || this.blocking.status === 'end') break;
        this.onError(error);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        continue;
      }
      const ref = popped ? decodeRef(popped[1]) : null;
      if (!ref) continue;
      const run: Promise<void> = handler(ref)
        .catch(this.onError)
        .finally(() => this.running.delete(run));
      this.running.add(run);
    }
  }
}
