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

describe('results channel of an api process (wait=true without a subscription per execution)', () => {
  let api: FleetStore;
  let worker: FleetStore;

  beforeAll(async () => {
    api = connectStore(prefix, 'waiters-api');
    worker = connectStore(prefix, 'waiters-worker');
    await until(() => api.waiters.ready);
  });
  afterAll(async () => {
    await Promise.all([api.close(), worker.close()]);
  });

  /** Accepts an execution of `session` (with this process's waiter when asked), claims it and ends it `completed`. */
  async function runToEnd(session: string, executionId: string, withWaiter: boolean) {
    const { ref } = await api.executions.accept(request(session, { executionId, ...(withWaiter ? { waiter: api.waiters.channel } : {}) }));
    const claim = await worker.executions.claim(ref, 'w1', 'boot-1', Date.now());
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    const ending: Ending = { status: 'completed', phase: 'run', exitCode: 0 };
    await worker.lanes.finish(ref, terminalExecution(claim.record, ending, resultWithoutRun(ending, 'done')), 'running');
    return ref;
  }

  it('brings the result event (the terminal execution, with its seq in the stream) to every request waiting for it, from whichever process ends it', async () => {
    const executionId = newExecutionId();
    const first = api.waiters.expect(executionId);
    const second = api.waiters.expect(executionId);
    const ref = await runToEnd('waited', executionId, true);
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
    const notAsked = api.waiters.expect(unwaited);
    await runToEnd('unwaited', unwaited, false);
    expect(await within(notAsked.result, 500)).toBe('nothing');
    notAsked.cancel();

    const givenUp = newExecutionId();
    const cancelled = api.waiters.expect(givenUp);
    const kept = api.waiters.expect(givenUp);
    cancelled.cancel();
    await runToEnd('given-up', givenUp, true);
    expect(await within(kept.result, 5_000)).toMatchObject({ type: 'result', data: { executionId: givenUp, status: 'completed' } });
    expect(await within(cancelled.result, 200)).toBe('nothing');
  });
});
