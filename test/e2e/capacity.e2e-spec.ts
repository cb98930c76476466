import type { Execution } from '@kernelfleet/contracts';
import { Stack, type AppProcess } from '../support/stack';

/**
 * A full fleet (docs/capacity.md), on one worker with room for four session kernels: an idle
 * kernel is evicted for a new session, a busy one never is, and when nothing can be freed the
 * waiting execution says so. Tests run one after another, each starting from what the previous
 * one left.
 */

jest.setTimeout(90_000);

const MIN_IDLE_MS = 3_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(url: string, line: RegExp): Promise<number | undefined> {
  const text = await (await fetch(url)).text();
  const match = text.split('\n').find((l) => line.test(l));
  return match === undefined ? undefined : Number(match.split(' ').pop());
}

describe('a full fleet (one worker, MAX_KERNELS=4)', () => {
  let stack: Stack;
  let worker: AppProcess;

  beforeAll(async () => {
    stack = await Stack.start({ workerEnv: { MAX_KERNELS: '4', KERNEL_EVICT_MIN_IDLE_MS: String(MIN_IDLE_MS), KERNEL_START_MAX_MS: '30000' } });
    worker = stack.workers[0];
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('evicts the least recently used idle kernel for a fifth session; the evicted session says so and runs again', async () => {
    for (const s of ['cap-1', 'cap-2', 'cap-3', 'cap-4']) {
      expect((await stack.run(s, { code: `x = '${s}'`, timeoutMs: 60_000 })).status).toBe('completed');
    }
    // cap-1 is the least recently used; every kernel is idle past the minimum once this is over.
    await sleep(MIN_IDLE_MS + 500);

    const fifth = await stack.run('cap-5', { code: 'print("in")', timeoutMs: 30_000 });
    expect(fifth.status).toBe('completed');
    expect(fifth.result?.output).toBe('in\n');
    expect(fifth.kernel).toMatchObject({ generation: 1, stateLost: false });

    const evicted = await stack.request('GET', '/v1/sessions/cap-1');
    expect(evicted.json).toMatchObject({ workerId: null, kernel: { generation: 1, state: 'evicted' }, files: 'lost' });
    for (const s of ['cap-2', 'cap-3', 'cap-4']) {
      expect((await stack.request('GET', `/v1/sessions/${s}`)).json).toMatchObject({ workerId: worker.name, kernel: { state: 'idle' } });
    }

    // Its next execution gets a fresh kernel (evicting the next least recently used, cap-2) and says why the state went.
    const back = await stack.run('cap-1', { code: "print('x' in globals())", timeoutMs: 30_000 });
    expect(back.status).toBe('completed');
    expect(back.result?.output).toBe('False\n');
    expect(back.kernel).toMatchObject({ generation: 2, restarted: true, stateLost: true, stateLostReason: 'evicted' });
    const again = await stack.run('cap-1', { code: 'print(1)' });
    expect(again.kernel).toMatchObject({ generation: 2, restarted: false, stateLost: false });
    expect(again.kernel?.stateLostReason).toBeUndefined();
    expect((await stack.request('GET', '/v1/sessions/cap-2')).json).toMatchObject({ workerId: null, kernel: { state: 'evicted' } });
    expect(await metric(worker.metricsUrl!, /^kernelfleet_kernels_evicted_total /)).toBe(2);
  });

  it('never evicts a running session; with every kernel busy a new session times out naming the full fleet', async () => {
    // The four sessions holding the kernels now (cap-3, cap-4, cap-5, cap-1) all run.
    const holders = ['cap-3', 'cap-4', 'cap-5', 'cap-1'];
    const busy = await Promise.all(holders.map((s) => stack.submit(s, { code: 'import time; time.sleep(9); print("done")', timeoutMs: 60_000 })));
    for (const b of busy) await stack.waitForStatus(b.executionId, 'running');
    // Idle kernels would have been evictable by now: these are busy, and none may go.
    await sleep(MIN_IDLE_MS + 500);

    const waiting = await stack.submit('cap-6', { code: 'print("never")', timeoutMs: 3_000 });
    const timedOut = await stack.settled(waiting.executionId);
    expect(timedOut).toMatchObject({ status: 'timed_out', phase: 'queue' });
    expect(timedOut.result?.output).toBe(
      'Command timed out: no kernel capacity in the fleet (4 of 4 session kernels in use on 1 worker, none idle for 3 s to make room)',
    );
    expect(await metric(worker.metricsUrl!, /^kernelfleet_executions_no_capacity_total /)).toBe(1);
    const api = await stack.request('GET', '/metrics');
    expect(api.text).toMatch(/^kernelfleet_fleet_kernels\{state="held"\} 4$/m);
    expect(api.text).toMatch(/^kernelfleet_fleet_kernels\{state="capacity"\} 4$/m);

    const ended: Execution[] = await Promise.all(busy.map((b) => stack.settled(b.executionId)));
    for (const e of ended) {
      expect(e.status).toBe('completed');
      expect(e.result?.output).toBe('done\n');
      expect(e.kernel).toMatchObject({ restarted: false, stateLost: false });
    }
    expect(await metric(worker.metricsUrl!, /^kernelfleet_kernels_evicted_total /)).toBe(2);
  });
});
