import { SHARED_QUEUE } from '@kernelfleet/contracts';
import type { Dispatcher } from './dispatcher';
import { FRONT } from './dispatcher';
import type { ExecutionRecord } from './execution-record';
import type { ExecutionRepository } from './execution-repository';
import type { ExecutionRef, SessionRef } from './keys';
import type { KernelState, SessionRepository } from './session-repository';
import type { SessionLanes } from './session-lanes';
import { resultWithoutRun, terminalExecution, type Ending } from './terminal-execution';

/** The notice of an execution whose kernel (or worker) went away while it ran. */
export const KERNEL_LOST_NOTICE =
  'the kernel was lost during the execution (its worker, Jupyter server or kernel died); its ' +
  'outcome is unknown and the next execution of the session starts on a fresh kernel.';

/**
 * What happens to the work of a worker that is gone (lost) or leaving (draining): its sessions
 * lose their home, their queued lane heads move to the shared queue, and an execution that was
 * running there ends `outcome_unknown` — or runs once more if it asked for `retryOnKernelLoss`.
 * Every step is idempotent, so several reapers (or a reaper and a stalled-job redelivery) can
 * race without harm.
 *
 * The heads it hands back go to the front of the shared queue (Dispatcher `FRONT`), the longest
 * waiting first: their sessions did nothing to lose their place, and must not wait behind
 * everything dispatched since (docs/capacity.md, "Re-homing").
 */
export class Failover {
  constructor(
    private readonly executions: ExecutionRepository,
    private readonly sessions: SessionRepository,
    private readonly lanes: SessionLanes,
    private readonly dispatcher: Dispatcher,
  ) {}

  /**
   * An execution marked running on `workerId`, which lost its kernel: run it elsewhere when its
   * code never reached a kernel (or once more with retryOnKernelLoss), else `outcome_unknown`.
   */
  async recoverExecution(ref: ExecutionRef, workerId: string): Promise<'requeued' | 'ended' | 'skipped'> {
    const record = await this.executions.getRecord(ref);
    if (!record || record.status !== 'running' || record.workerId !== workerId) {
      await this.executions.unmarkRunning(ref, workerId);
      return 'skipped';
    }
    const info = await this.sessions.get(ref);
    if (record.kernelMode === 'session') await this.sessions.release(ref, workerId, 'lost');
    let outcome: 'requeued' | 'ended';
    const attempt =
      (await this.executions.requeue(ref, workerId, 'unstarted')) ||
      (record.retryOnKernelLoss ? await this.executions.requeue(ref, workerId, 'retry') : 0);
    if (attempt > 0) {
      // A fresh job id: the lost attempt's job may still sit active in BullMQ until its lock expires.
      await this.dispatcher.dispatch(ref, undefined, attempt, FRONT);
      outcome = 'requeued';
    } else {
      const ending: Ending = {
        status: 'outcome_unknown',
        phase: 'run',
        exitCode: null,
        kernel: { workerId, generation: info?.kernel.generation ?? 0, stateLost: true, stateLostReason: 'lost', restarted: false },
      };
      await this.lanes.finish(ref, terminalExecution(record, ending, resultWithoutRun(ending, `[${KERNEL_LOST_NOTICE}]`)), 'running');
      outcome = 'ended';
    }
    await this.executions.unmarkRunning(ref, workerId);
    return outcome;
  }

  /**
   * Takes every session away from `workerId` (state `lost`: their next execution reports it) and
   * moves what waits in its queue to the shared queue. With `lost`, executions running there
   * are recovered too; a draining worker finishes its own first.
   */
  async handBack(workerId: string, opts: { lost: boolean; state?: KernelState }): Promise<{ sessions: number; recovered: number }> {
    let recovered = 0;
    if (opts.lost) {
      for (const ref of await this.executions.runningOn(workerId)) {
        if ((await this.recoverExecution(ref, workerId)) !== 'skipped') recovered += 1;
      }
    }
    const sessions = await this.sessions.homedOn(workerId);
    const queuedHeads: { head: ExecutionRef; acceptedAt: number }[] = [];
    for (const session of sessions) {
      const { head, record } = await this.laneHead(session);
      if (opts.lost && record?.status === 'running' && record.workerId === workerId) {
        if ((await this.recoverExecution(head, workerId)) !== 'skipped') recovered += 1;
      }
      await this.sessions.release(session, workerId, opts.state ?? 'lost');
      if (record?.status === 'queued') queuedHeads.push({ head, acceptedAt: record.acceptedAt });
    }
    queuedHeads.sort((a, b) => a.acceptedAt - b.acceptedAt);
    for (const { head } of queuedHeads) await this.dispatcher.dispatch(head, undefined, 0, FRONT);
    await this.moveQueuedJobs(workerId);
    return { sessions: sessions.length, recovered };
  }

  /**
   * Heads still waiting in the worker's inbox go to the front of the shared queue, in their
   * order. Each is taken out of the inbox first, so a head the worker takes meanwhile (a
   * draining worker still runs its inbox) is not also handed on.
   */
  async moveQueuedJobs(workerId: string): Promise<number> {
    let moved = 0;
    for (const ref of await this.dispatcher.inboxes.waiting(workerId)) {
      if (!(await this.dispatcher.inboxes.remove(workerId, ref))) continue;
      await this.dispatcher.enqueue(SHARED_QUEUE, ref, ref.executionId, FRONT);
      moved += 1;
    }
    return moved;
  }

  /**
   * Places the queued heads of the sessions homed on `workerId` in its inbox again (a head
   * already there keeps its place; one already claimed is refused by the claim). Repairs a head
   * whose pop was lost with a dropped connection (InboxConsumer); answers how many were missing.
   */
  async reofferHeads(workerId: string): Promise<number> {
    let offered = 0;
    for (const session of await this.sessions.homedOn(workerId)) {
      const { head, record } = await this.laneHead(session);
      if (record?.status !== 'queued' || (await this.sessions.homeOf(head)) !== workerId) continue;
      if (await this.dispatcher.toWorker(workerId, head, FRONT)) offered += 1;
    }
    return offered;
  }

  /** A session's lane head and its record (null when the lane is empty or the record gone). */
  private async laneHead(session: SessionRef): Promise<{ head: ExecutionRef; record: ExecutionRecord | null }> {
    const head = (await this.executions.laneOf(session))[0];
    return { head, record: head ? await this.executions.getRecord(head) : null };
  }

  /** True when nothing of the worker is left: no sessions, running executions or heads in its inbox. */
  async isEmpty(workerId: string): Promise<boolean> {
    const [sessions, running, inbox] = await Promise.all([
      this.sessions.homedOn(workerId),
      this.executions.runningOn(workerId),
      this.dispatcher.inboxes.depth(workerId),
    ]);
    return sessions.length === 0 && running.length === 0 && inbox === 0;
  }
}
