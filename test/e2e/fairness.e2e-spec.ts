import type { Execution } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';

jest.setTimeout(180_000);

/**
 * Fair share between tenants (docs/quotas.md): tenant A floods the worker with a backlog over
 * many sessions; tenant B's execution, submitted after the flood, starts before most of A's
 * backlog — not behind one lane head of each of A's sessions, as plain FIFO would have it.
 */

const A_SESSIONS = 40;
const PER_SESSION = 5;
const FAIR_MAX_AHEAD = 10;

describe('fair share between tenants', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ workerEnv: { WORKER_CONCURRENCY: '4', MAX_KERNELS: '48' } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it("tenant B's execution starts ahead of tenant A's backlog", async () => {
    const aSessions = Array.from({ length: A_SESSIONS }, (_, i) => `flood-${i}`);
    // Kernels first, so the flood and B's execution all wait on the same (sticky) queue.
    for (let i = 0; i < aSessions.length; i += 8) {
      await Promise.all(aSessions.slice(i, i + 8).map(async (s) => expect((await stack.run(s, { code: 'import time', timeoutMs: 60_000 })).status).toBe('completed')));
    }
    expect((await stack.run('b-warm', { code: '1', timeoutMs: 60_000 }, { key: stack.otherKey })).status).toBe('completed');

    const flood = await Promise.all(
      Array.from({ length: A_SESSIONS * PER_SESSION }, (_, i) =>
        stack.submit(aSessions[i % A_SESSIONS], { code: 'time.sleep(0.3)', timeoutMs: 170_000 }),
      ),
    );
    const b = await stack.submit('b-warm', { code: '1+1', timeoutMs: 170_000 }, { key: stack.otherKey });

    const bDone = await settledAs(b.executionId, stack.otherKey);
    const aDone = await Promise.all(flood.map((a) => settledAs(a.executionId, stack.apiKey)));
    expect(bDone.status).toBe('completed');
    expect(aDone.every((a) => a.status === 'completed')).toBe(true);

    // A's backlog: what had not started when B was accepted. B must start before most of it.
    const bAccepted = bDone.timings.acceptedAt;
    const bStarted = bDone.timings.startedAt!;
    const backlog = aDone.filter((a) => a.timings.startedAt! > bAccepted);
    const aheadOfB = backlog.filter((a) => a.timings.startedAt! < bStarted);
    expect(backlog.length).toBeGreaterThan(A_SESSIONS * PER_SESSION * 0.5);
    // Plain FIFO puts B behind a lane head of each of A's sessions (~A_SESSIONS); fair share
    // behind at most the jobs already taken and one priority level of A.
    expect(aheadOfB.length).toBeLessThanOrEqual(FAIR_MAX_AHEAD);
  });

  async function settledAs(executionId: string, key: string): Promise<Execution> {
    for (;;) {
      const res = await stack.request('GET', `/v1/executions/${executionId}`, undefined, { key });
      if (res.status !== 200) throw new Error(`get answered ${res.status}`);
      if (!['queued', 'running'].includes(res.json.status)) return res.json as Execution;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
