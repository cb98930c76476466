import type { ExecutionRepository } from './execution-repository';
import type { SessionRef } from './keys';
import type { SessionLanes } from './session-lanes';
import type { SessionRepository } from './session-repository';
import type { WorkerRegistry } from './worker-registry';

/** What disposing one session did. */
export interface SessionDisposalOutcome {
  /** Queued executions ended `cancelled` (phase `queue`; they never run). */
  cancelled: number;
  /** The worker that held the session's kernel (told to shut it down), or null. */
  home: string | null;
}

export interface DisposeOptions {
  /**
   * Publish the control message to the old home worker (default true). Without it the worker
   * learns of the disposal at its next reconcile with Redis: the same end state, later. Tests use
   * it to stand for a lost pub/sub message.
   */
  notify?: boolean;
}

/** Sessions disposed (or released by an owner) at once by `disposeAll` and `disposeOwner`. */
const BATCH = 16;

/**
 * Disposing a session (`DELETE /v1/sessions/{id}`, dispose by owner, `DELETE /v1/sessions`), in
 * one call: its queued executions are cancelled, its owners cleared, and it is un-homed in Redis
 * (home cleared, kernel state `none`; dispose-2.lua). Redis is the truth the workers go by: a
 * worker reuses a session kernel only while the session is homed on it with that kernel's
 * generation, and reconciles its kernels with Redis every few seconds, shutting down (and ending
 * the execution running on) any kernel whose session it no longer holds. The control message to
 * the old home is only the fast path; a lost one delays the shutdown by a reconcile period, it
 * never leaves the old kernel serving the session.
 */
export class SessionDisposal {
  constructor(
    private readonly executions: ExecutionRepository,
    private readonly sessions: SessionRepository,
    private readonly lanes: SessionLanes,
    private readonly registry: WorkerRegistry,
  ) {}

  /**
   * Disposes the session (see the class). An execution running on the old kernel is ended by its
   * worker (`cancelled`, with a notice), not awaited here. Idempotent; a session with nothing
   * left changes nothing but its kernel state (`none`).
   */
  async dispose(ref: SessionRef, opts: DisposeOptions = {}): Promise<SessionDisposalOutcome> {
    const cancelled = await this.cancelQueued(ref);
    const { home } = await this.sessions.unhome(ref);
    if (home && opts.notify !== false) {
      await this.registry.sendControl(home, { op: 'dispose', tenant: ref.tenant, sessionId: ref.sessionId });
    }
    return { cancelled, home };
  }

  /**
   * Ends every queued execution of the session `cancelled`; a running one is left alone. From the
   * lane's tail to its head: a queued head ended first would hand the lane to the next queued
   * execution, dispatching it while it is about to be cancelled. Answers how many were cancelled.
   */
  async cancelQueued(ref: SessionRef): Promise<number> {
    let cancelled = 0;
    for (const execution of (await this.executions.laneOf(ref)).reverse()) {
      if ((await this.lanes.endQueued(execution, 'cancelled')).kind === 'finished') cancelled += 1;
    }
    return cancelled;
  }

  /**
   * Disposes every session of the tenant that has a kernel (a home worker) or pending executions,
   * as `dispose` does; answers their ids, sorted. Finds them through the tenant's sessions index
   * (sessions admitted work within the retention window). Another tenant's sessions are in
   * another index and never touched. Per-call kernels are no session's kernel: a per-call
   * execution running now runs to its end (its queued siblings are cancelled).
   */
  async disposeAll(tenant: string): Promise<string[]> {
    const disposed: string[] = [];
    await inBatches(await this.sessions.indexedSessionsOfTenant(tenant), async (sessionId) => {
      const ref = { tenant, sessionId };
      const info = await this.sessions.get(ref);
      if (!info || (info.workerId === null && info.pending === 0)) return;
      await this.dispose(ref);
      disposed.push(sessionId);
    });
    return disposed.sort();
  }

  /**
   * Dispose by owner (seed §2.4): each session the owner alone held is disposed as `dispose`
   * does; a shared one just loses the owner (release-owner-1.lua decides which, in one step).
   * Answers both lists, sorted; both empty when the owner holds no session of the tenant.
   */
  async disposeOwner(tenant: string, ownerId: string): Promise<{ disposed: string[]; detached: string[] }> {
    const disposed: string[] = [];
    const detached: string[] = [];
    await inBatches(await this.sessions.indexedSessionsOf(tenant, ownerId), async (sessionId) => {
      const ref = { tenant, sessionId };
      const released = await this.sessions.releaseOwner(ref, ownerId);
      if (released === 'last') {
        await this.dispose(ref);
        disposed.push(sessionId);
      } else if (released === 'detached') {
        detached.push(sessionId);
      }
    });
    return { disposed: disposed.sort(), detached: detached.sort() };
  }
}

/** Runs `work` on every id, BATCH at a time. */
async function inBatches(ids: string[], work: (id: string) => Promise<void>): Promise<void> {
  for (let i = 0; i < ids.length; i += BATCH) await Promise.all(ids.slice(i, i + BATCH).map(work));
}
