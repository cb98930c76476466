import { SHARED_QUEUE } from '@kernelfleet/contracts';
import {
  resultWithoutRun,
  terminalExecution,
  type FleetStore,
  type Ending,
  type ExecutionRecord,
} from '@kernelfleet/store';
import { acceptRequest as request, connectStore, testPrefix } from '../support/store-fixtures';

const prefix = testPrefix('lanes');
const connect = () => connectStore(prefix, 'lanes-test');

function completed(record: ExecutionRecord) {
  const ending: Ending = { status: 'completed', phase: 'run', exitCode: 0 };
  return terminalExecution(record, ending, resultWithoutRun(ending, 'done'));
}

describe('session lanes in Redis (Lua scripts)', () => {
  const stores: FleetStore[] = [];
  let store: FleetStore;

  beforeAll(() => {
    for (let i = 0; i < 8; i++) stores.push(connect());
    store = stores[0];
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it('numbers concurrent accepts from many connections 1..N, lane in seq order, one head', async () => {
    const accepted = await Promise.all(
      Array.from({ length: 40 }, (_, i) => stores[i % stores.length].executions.accept(request('concurrent'))),
    );
    const seqs = accepted.map((a) => a.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(accepted.filter((a) => a.isHead)).toHaveLength(1);
    const lane = await store.executions.laneOf({ tenant: 'acme', sessionId: 'concurrent' });
    const seqOf = new Map(accepted.map((a) => [a.ref.executionId, a.seq]));
    expect(lane.map((ref) => seqOf.get(ref.executionId))).toEqual(seqs);
  });

  it('lets only the lane head be claimed, and only once', async () => {
    const first = await store.executions.accept(request('claims'));
    const second = await store.executions.accept(request('claims'));
    expect(await store.executions.claim(second.ref, 'w1', 'boot-1', Date.now())).toEqual({ kind: 'not_head' });
    const claims = await Promise.all(stores.map((s) => s.executions.claim(first.ref, 'w1', 'boot-1', Date.now())));
    expect(claims.filter((c) => c.kind === 'claimed')).toHaveLength(1);
    expect(claims.filter((c) => c.kind === 'not_queued')).toHaveLength(stores.length - 1);
  });

  it('sends code only while the claim holds: a reaper\'s unstarted requeue and the code-sent mark exclude each other', async () => {
    // The reaper first: the worker (its lease lapsed while it started a kernel) must not send the code.
    const taken = await store.executions.accept(request('code-sent-a'));
    expect((await store.executions.markRunningAndClaim(taken.ref, 'w1', 'boot-1', Date.now)).kind).toBe('claimed');
    expect(await store.executions.requeue(taken.ref, 'w1', 'unstarted')).toBe(1);
    expect(await store.executions.markCodeSent(taken.ref, 'w1', 'boot-1', 1)).toBe('taken');
    // The mark first: the reaper may no longer re-run it as never started.
    const sent = await store.executions.accept(request('code-sent-b'));
    expect((await store.executions.markRunningAndClaim(sent.ref, 'w1', 'boot-1', Date.now)).kind).toBe('claimed');
    expect(await store.executions.markCodeSent(sent.ref, 'w1', 'boot-2', 1)).toBe('taken'); // another process of w1
    expect(await store.executions.markCodeSent(sent.ref, 'w1', 'boot-1', 1)).toBe('sent');
    expect(await store.executions.requeue(sent.ref, 'w1', 'unstarted')).toBe(0);
  });

  it('marks the code as sent in the claim itself only when it goes to the warm kernel the session is homed at', async () => {
    const ref = { tenant: 'acme', sessionId: 'claim-sends' };
    const generation = await store.sessions.beginGeneration(ref, 'w1');
    expect(await store.sessions.latestKernelWasUsed(ref)).toBe(false);
    /** Claims the next execution of the session (accepted with `overrides`), then ends it. */
    const claimWith = async (workerId: string, warm: number | undefined, overrides: Parameters<typeof request>[1] = {}) => {
      const { ref: next } = await store.executions.accept(request(ref.sessionId, overrides));
      const claim = await store.executions.markRunningAndClaim(next, workerId, 'boot-1', Date.now, warm);
      if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
      // Marked or not, the reaper's answer shows it: an unstarted requeue only of what was not.
      const requeued = await store.executions.requeue(next, workerId, 'unstarted');
      if (requeued) await store.executions.claim(next, workerId, 'boot-1', Date.now());
      await store.lanes.finish(next, completed(claim.record), 'running');
      return { codeSent: claim.codeSent, requeued: requeued > 0 };
    };
    expect(await claimWith('w1', generation)).toEqual({ codeSent: true, requeued: false });
    expect(await store.sessions.latestKernelWasUsed(ref)).toBe(true);
    expect(await claimWith('w1', undefined)).toEqual({ codeSent: false, requeued: true });
    expect(await claimWith('w1', generation + 1)).toEqual({ codeSent: false, requeued: true }); // not the session's kernel
    expect(await claimWith('w2', generation)).toEqual({ codeSent: false, requeued: true }); // not the session's home
    expect(await claimWith('w1', generation, { reset: true })).toEqual({ codeSent: false, requeued: true });
    expect(await claimWith('w1', generation, { kernelMode: 'per-call' })).toEqual({ codeSent: false, requeued: true });
  });

  it('does not send the code of an execution claimed before its session was disposed (its kernel was starting)', async () => {
    const ref = { tenant: 'acme', sessionId: 'code-sent-disposed' };
    const claimedBefore = await store.executions.accept(request(ref.sessionId));
    const claim = await store.executions.markRunningAndClaim(claimedBefore.ref, 'w1', 'boot-1', Date.now);
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    await store.sessions.beginGeneration(ref, 'w1');
    await store.disposal.dispose(ref, { notify: false });
    // The start that was under way homes the session again; the code still stays home.
    const generation = await store.sessions.beginGeneration(ref, 'w1');
    expect(await store.executions.markCodeSent(claimedBefore.ref, 'w1', 'boot-1', generation)).toBe('disposed');
    // A per-call kernel is no session's kernel: its code goes.
    expect(await store.executions.markCodeSent(claimedBefore.ref, 'w1', 'boot-1', null)).toBe('sent');
    // An execution claimed after the disposal runs as usual.
    await store.lanes.finish(claimedBefore.ref, completed(claim.record), 'running');
    const claimedAfter = await store.executions.accept(request(ref.sessionId));
    expect((await store.executions.markRunningAndClaim(claimedAfter.ref, 'w1', 'boot-1', Date.now)).kind).toBe('claimed');
    expect(await store.executions.markCodeSent(claimedAfter.ref, 'w1', 'boot-1', generation)).toBe('sent');
  });

  it('ends an execution once, emits result last and hands the lane to the next', async () => {
    const first = await store.executions.accept(request('finish'));
    const second = await store.executions.accept(request('finish'));
    const claim = await store.executions.claim(first.ref, 'w1', 'boot-1', Date.now());
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    await store.executions.emit(first.ref, 'stdout', { text: 'hello\n' });
    const outcomes = await Promise.all(stores.map((s) => s.executions.finish(first.ref, completed(claim.record), 'running')));
    const finished = outcomes.filter((o) => o.kind === 'finished');
    expect(finished).toHaveLength(1);
    expect(finished[0]).toMatchObject({ kind: 'finished', nextHead: second.ref });
    expect(await store.executions.emit(first.ref, 'stdout', { text: 'late\n' })).toBe(0);
    const events = await store.executions.readEvents(first.ref, 0);
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'queued'],
      [2, 'started'],
      [3, 'stdout'],
      [4, 'result'],
    ]);
    expect((await store.executions.readEvents(first.ref, 2)).map((e) => e.seq)).toEqual([3, 4]);
    expect((await store.executions.get(first.ref))?.status).toBe('completed');
  });

  it('cancels a queued execution in the middle of a lane without disturbing the order', async () => {
    const [a, b, c] = [
      await store.executions.accept(request('middle')),
      await store.executions.accept(request('middle')),
      await store.executions.accept(request('middle')),
    ];
    expect((await store.lanes.endQueued(b.ref, 'cancelled')).kind).toBe('finished');
    const lane = await store.executions.laneOf({ tenant: 'acme', sessionId: 'middle' });
    expect(lane.map((r) => r.executionId)).toEqual([a.ref.executionId, c.ref.executionId]);
    const cancelled = await store.executions.get(b.ref);
    expect(cancelled?.status).toBe('cancelled');
    expect(cancelled?.phase).toBe('queue');
    expect(cancelled?.result?.output).toBe('');
  });

  it('refuses to claim past the deadline, and the sweep ends it timed_out in phase queue', async () => {
    const now = Date.now();
    const late = await store.executions.accept(request('late', { acceptedAt: now, deadlineAt: now + 50 }));
    expect(await store.executions.claim(late.ref, 'w1', 'boot-1', now + 60)).toEqual({ kind: 'expired' });
    const overdue = await store.executions.overdue(now + 60, 1_000);
    expect(overdue.map((r) => r.executionId)).toContain(late.ref.executionId);
    await store.lanes.endQueued(late.ref, 'timed_out');
    const execution = await store.executions.get(late.ref);
    expect(execution?.status).toBe('timed_out');
    expect(execution?.result?.output).toBe('Command timed out');
    expect(execution?.result?.exitCode).toBeNull();
    expect((await store.executions.overdue(now + 60, 1_000)).map((r) => r.executionId)).not.toContain(late.ref.executionId);
  });

  it('dispatches a lane head once to the shared queue however often it is asked', async () => {
    const head = await store.executions.accept(request('dispatch'));
    await Promise.all(stores.map((s) => s.dispatcher.dispatch(head.ref)));
    const queue = store.dispatcher.queue(SHARED_QUEUE);
    const job = await queue.getJob(head.ref.executionId);
    expect(job?.data).toEqual({ tenant: 'acme', sessionId: 'dispatch', executionId: head.ref.executionId });
    // Fair share gives every job a priority: it waits in BullMQ's `prioritized` set.
    expect(await queue.getJobCountByTypes('waiting', 'prioritized')).toBe(1);
  });

  it('keeps tenants apart: an id of one tenant is not found with another', async () => {
    const mine = await store.executions.accept(request('isolated'));
    expect(await store.executions.locate('acme', mine.ref.executionId)).toEqual(mine.ref);
    expect(await store.executions.locate('globex', mine.ref.executionId)).toBeNull();
  });
});
