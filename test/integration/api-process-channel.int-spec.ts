import { resultWithoutRun, terminalExecution, newExecutionId, type Ending, type FleetStore } from '@kernelfleet/store';
import { acceptRequest as request, connectStore, testPrefix } from '../support/store-fixtures';

const prefix = testPrefix('waiters');

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What a promise brings within `ms`, or 'nothing'. */
const within = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<'nothing'>((r) => setTimeout(() => r('nothing'), ms))]);

describe('the channel of an api process (wait=true and streamed submits without a subscription per execution)', () => {
  let api: FleetStore;
  let worker: FleetStore;

  beforeAll(async () => {
    api = connectStore(prefix, 'waiters-api');
    worker = connectStore(prefix, 'waiters-worker');
    await until(() => api.apiProcessChannel.ready);
  });
  afterAll(async () => {
    await Promise.all([api.close(), worker.close()]);
  });

  /**
   * Accepts an execution of `session` with this process's channel as its `waiter` or
   * `follower` when asked, claims it, prints, makes a tool call, answers it and ends it
   * `completed`.
   */
  async function runToEnd(session: string, executionId: string, as: 'waiter' | 'follower' | 'neither') {
    const { ref } = await api.executions.accept(request(session, { executionId, ...(as !== 'neither' ? { [as]: api.apiProcessChannel.name } : {}) }));
    const claim = await worker.executions.claim(ref, 'w1', 'boot-1', Date.now());
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    await worker.executions.emit(ref, 'stdout', { text: 'hello\n' });
    const call = { callId: 'c1', name: 'lookup', args: { q: 1 }, deadlineAt: Date.now() + 60_000 };
    await worker.toolCalls.open(ref, call, { type: 'tool_call', callId: 'c1', name: 'lookup' });
    await api.toolCalls.answer(ref, 'c1', { ok: true, value: 2 });
    const ending: Ending = { status: 'completed', phase: 'run', exitCode: 0 };
    await worker.lanes.finish(ref, terminalExecution(claim.record, ending, resultWithoutRun(ending, 'done')), 'running');
    return ref;
  }

  it('brings the result event (the terminal execution, with its seq in the stream) to every request waiting for it, from whichever process ends it', async () => {
    const executionId = newExecutionId();
    const first = api.apiProcessChannel.expect(executionId);
    const second = api.apiProcessChannel.expect(executionId);
    const ref = await runToEnd('waited', executionId, 'waiter');
    const [lastEvent] = (await api.executions.readEvents(ref, 0)).slice(-1);
    for (const waiter of [first, second]) {
      const event = await within(waiter.result, 5_000);
      expect(event).toEqual(lastEvent);
      expect(event).toMatchObject({ type: 'result', data: { executionId, status: 'completed', result: { output: 'done' } } });
    }
    // What a waiting request reads when the message was missed: the same event.
    expect(await api.executions.resultEvent(ref)).toEqual(lastEvent);
  });

  it('brings nothing for an execution accepted without the waiter, nor to a wait given up', async () => {
    const unwaited = newExecutionId();
    const notAsked = api.apiProcessChannel.expect(unwaited);
    await runToEnd('unwaited', unwaited, 'neither');
    expect(await within(notAsked.result, 500)).toBe('nothing');
    notAsked.cancel();

    const givenUp = newExecutionId();
    const cancelled = api.apiProcessChannel.expect(givenUp);
    const kept = api.apiProcessChannel.expect(givenUp);
    cancelled.cancel();
    await runToEnd('given-up', givenUp, 'waiter');
    expect(await within(kept.result, 5_000)).toMatchObject({ type: 'result', data: { executionId: givenUp, status: 'completed' } });
    expect(await within(cancelled.result, 200)).toBe('nothing');
  });

  it('brings every event of a followed execution, in seq order, as the replay stream holds them, those before `listen` included', async () => {
    const executionId = newExecutionId();
    const followed = api.apiProcessChannel.follow(executionId);
    const ref = await runToEnd('followed', executionId, 'follower');
    const stream = await api.executions.readEvents(ref, 0);
    expect(stream.map((e) => e.type)).toEqual(['queued', 'started', 'stdout', 'tool_call', 'status', 'tool_result', 'status', 'result']);
    // Listening a moment after the run: what came meanwhile was kept for the listener.
    await new Promise((r) => setTimeout(r, 200));
    const seen: unknown[] = [];
    followed.listen((event) => seen.push(event));
    await until(() => seen.length >= stream.length);
    expect(seen).toEqual(stream);
    followed.cancel();
  });

  it('brings nothing for an execution accepted without the follower, nor to a following given up, nor events to a waiter', async () => {
    const unfollowed = newExecutionId();
    const notAsked = api.apiProcessChannel.follow(unfollowed);
    const seenUnfollowed: unknown[] = [];
    notAsked.listen((event) => seenUnfollowed.push(event));
    const waited = api.apiProcessChannel.expect(unfollowed);
    await runToEnd('unfollowed', unfollowed, 'waiter');
    expect(await within(waited.result, 5_000)).toMatchObject({ type: 'result', data: { executionId: unfollowed } });
    expect(seenUnfollowed).toEqual([]);
    notAsked.cancel();

    const givenUp = newExecutionId();
    const cancelled = api.apiProcessChannel.follow(givenUp);
    const seenGivenUp: unknown[] = [];
    cancelled.listen((event) => seenGivenUp.push(event));
    cancelled.cancel();
    const waitedToo = api.apiProcessChannel.expect(givenUp);
    await runToEnd('follow-given-up', givenUp, 'follower');
    // The result went to the follower's channel only: a waiter of the same id is not a follower.
    expect(await within(waitedToo.result, 500)).toBe('nothing');
    expect(seenGivenUp).toEqual([]);
    waitedToo.cancel();
  });
});
