import type { QuotaLimits } from '@kernelfleet/config';
import { SHARED_QUEUE } from '@kernelfleet/contracts';
import { encodeRef, resultWithoutRun, terminalExecution, type Ending, type ExecutionRef, type FleetStore, type SubmitRequest } from '@kernelfleet/store';
import { connectStore, testPrefix } from '../support/store-fixtures';

const LIMITS: QuotaLimits = {
  liveSessions: 10,
  pendingPerSession: 3,
  pendingPerTenant: 20,
  submitsPerSecond: 1_000,
  submitBurst: 1_000,
  maxCodeBytes: 1_000,
  maxTimeoutMs: 60_000,
};

let n = 0;
function submission(sessionId: string, overrides: Partial<SubmitRequest> = {}): SubmitRequest {
  return {
    tenant: 'acme',
    sessionId,
    executionId: `ex_sub${++n}`,
    code: 'print(1)',
    acceptedAt: Date.now(),
    kernelMode: 'session',
    reset: false,
    retryOnKernelLoss: false,
    defaultTimeoutMs: 30_000,
    ...overrides,
  };
}

/**
 * The accept path on one Redis, where it is one script (submit-17.lua, Submissions): a refusal
 * changes nothing; an accepted execution is numbered, indexed, scheduled and owned as the steps
 * of a Redis Cluster do it; a lane head of a session homed on a live worker goes to that
 * worker's inbox within the same script once this process has seen the home, and through the
 * dispatcher otherwise (a first accept, a home that moved, a worker draining).
 */
describe('submissions on one Redis (submit-17.lua), and the worker\'s claim and finish (claim-running-6.lua, finish-release-10.lua)', () => {
  const prefix = testPrefix('submit');
  let store: FleetStore;
  const lease = (draining: boolean) => ({ bootId: 'b1', maxKernels: 8, kernels: 0, running: 0, concurrency: 2, draining });
  let dispatches: ExecutionRef[];

  beforeAll(async () => {
    store = connectStore(prefix, `${prefix}-store`);
    await store.registry.startHeartbeat('w-one', () => lease(false));
    const dispatch = store.dispatcher.dispatch.bind(store.dispatcher);
    store.dispatcher.dispatch = (ref, ...rest) => {
      dispatches.push(ref);
      return dispatch(ref, ...rest);
    };
  });
  beforeEach(() => (dispatches = []));
  afterAll(async () => {
    await store.registry.stop('w-one');
    await store.close();
  });

  const submit = (req: SubmitRequest, limits: Partial<QuotaLimits> = {}) => store.submissions.submit(req, { ...LIMITS, ...limits });
  const accepted = async (req: SubmitRequest, limits: Partial<QuotaLimits> = {}) => {
    const outcome = await submit(req, limits);
    if (outcome.kind !== 'accepted') throw new Error(`refused: ${JSON.stringify(outcome)}`);
    return outcome;
  };
  const refOf = (req: SubmitRequest): ExecutionRef => ({ tenant: req.tenant, sessionId: req.sessionId, executionId: req.executionId });
  const deadlineOf = async (ref: ExecutionRef) => store.redis.zscore(store.keys.deadlines(), encodeRef(ref));

  it('refuses over a quota and changes nothing: no execution, lane entry, index, deadline or count', async () => {
    for (let i = 0; i < 3; i++) await accepted(submission('full'));
    const before = await store.quotas.usage('acme');
    const req = submission('full');
    const outcome = await submit(req);
    expect(outcome).toEqual({ kind: 'refused', admission: { kind: 'refused', quota: 'pendingPerSession', limit: 3, retryAfterSeconds: 1 } });
    expect(await store.executions.get(refOf(req))).toBeNull();
    expect((await store.executions.laneOf(refOf(req))).map((r) => r.executionId)).not.toContain(req.executionId);
    expect(await store.executions.locate('acme', req.executionId)).toBeNull();
    expect(await deadlineOf(refOf(req))).toBeNull();
    expect(await store.quotas.usage('acme')).toEqual(before);
  });

  it('accepts: numbered, indexed, its deadline from the admitted timeout, its owner indexed, a head without a home on the shared queue', async () => {
    const req = submission('fresh', { ownerId: 'agent-1', requestedTimeoutMs: 5_000 });
    const outcome = await accepted(req);
    expect(outcome.accepted).toMatchObject({ seq: 1, isHead: true, home: null, duplicate: false });
    expect(outcome.deadlineAt).toBe(req.acceptedAt + 5_000);
    expect(Number(await deadlineOf(refOf(req)))).toBe(outcome.deadlineAt);
    expect(await store.executions.locate('acme', req.executionId)).toEqual(refOf(req));
    expect((await store.executions.get(refOf(req)))?.status).toBe('queued');
    expect(await store.redis.smembers(store.keys.ownerSessions('acme', 'agent-1'))).toEqual(['fresh']);
    expect(dispatches).toEqual([refOf(req)]);
    const shared = await store.dispatcher.queue(SHARED_QUEUE).getJobs(['wait', 'prioritized']);
    expect(shared.map((j) => j.id)).toContain(req.executionId);

    // The client's own deadline is kept as given; a second submission is not a head.
    const second = submission('fresh', { deadlineAt: req.acceptedAt + 7_000, requestedTimeoutMs: 7_000 });
    const next = await accepted(second);
    expect(next.accepted).toMatchObject({ seq: 2, isHead: false });
    expect(Number(await deadlineOf(refOf(second)))).toBe(req.acceptedAt + 7_000);
    expect(dispatches).toEqual([refOf(req)]);
  });

  it('places the head of a session homed on a live worker in its inbox in the same script, once this process has seen the home', async () => {
    const first = submission('warm');
    await store.sessions.beginGeneration(refOf(first), 'w-one');
    await accepted(first);
    // Not seen yet: the dispatcher placed it, from the home the accept answered.
    expect(dispatches).toEqual([refOf(first)]);
    expect(await store.dispatcher.inboxes.waiting('w-one')).toEqual([refOf(first)]);
    await store.dispatcher.inboxes.remove('w-one', refOf(first));
    await store.lanes.endQueued(refOf(first), 'cancelled');

    const second = submission('warm');
    const outcome = await accepted(second);
    expect(outcome.accepted).toMatchObject({ isHead: true, home: 'w-one' });
    expect(dispatches).toEqual([refOf(first)]);
    expect(await store.dispatcher.inboxes.waiting('w-one')).toEqual([refOf(second)]);
    // Its place in line is the fair-share priority admit counted it with (the same answer again).
    const score = Number(await store.redis.zscore(store.keys.workerInbox('w-one'), encodeRef(refOf(second))));
    expect(Math.floor(score / 1000)).toBe(await store.fairShare.priorityFor('acme', second.executionId));
    await store.dispatcher.inboxes.remove('w-one', refOf(second));
    await store.lanes.endQueued(refOf(second), 'cancelled');
  });

  it('leaves a head whose home moved, or whose worker drains, to the dispatcher', async () => {
    const seen = submission('moving');
    await store.sessions.beginGeneration(refOf(seen), 'w-one');
    await accepted(seen);
    await store.dispatcher.inboxes.remove('w-one', refOf(seen));
    await store.lanes.endQueued(refOf(seen), 'cancelled');

    // Moved to a worker that is not alive: the script does not place it with w-one, the dispatcher sends it on.
    await store.sessions.beginGeneration(refOf(seen), 'w-gone');
    const moved = submission('moving');
    expect((await accepted(moved)).accepted).toMatchObject({ isHead: true, home: 'w-gone' });
    expect(dispatches.map((r) => r.executionId)).toEqual([seen.executionId, moved.executionId]);
    expect(await store.dispatcher.inboxes.depth('w-one')).toBe(0);
    expect((await store.dispatcher.queue(SHARED_QUEUE).getJobs(['wait', 'prioritized'])).map((j) => j.id)).toContain(moved.executionId);
    await store.lanes.endQueued(refOf(moved), 'cancelled');

    // Home again on w-one, which now drains: not placed there, by the script or by the dispatcher.
    await store.sessions.beginGeneration(refOf(seen), 'w-one');
    await store.registry.startHeartbeat('w-one', () => lease(true));
    await new Promise((r) => setTimeout(r, 1_100)); // the registry's view of live workers is up to 1 s old
    try {
      const draining = submission('moving');
      await accepted(draining);
      expect(await store.dispatcher.inboxes.depth('w-one')).toBe(0);
      expect(dispatches.map((r) => r.executionId)).toContain(draining.executionId);
      await store.lanes.endQueued(refOf(draining), 'cancelled');
    } finally {
      await store.registry.startHeartbeat('w-one', () => lease(false));
    }
  });

  it("takes a head into the worker's running set and finishes it out of it, its deadline and quota count with it, a step each", async () => {
    const [first, second] = [submission('worker-steps'), submission('worker-steps')];
    await accepted(first);
    await accepted(second);
    const before = await store.quotas.usage('acme');
    const running = async () => (await store.executions.runningOn('w-one')).map((r) => r.executionId);
    const waiting = (req: SubmitRequest) => store.redis.zscore(store.keys.tenantWaiting('acme'), req.executionId);
    expect(await waiting(first)).not.toBeNull(); // a head waits (fair share) until a worker takes it

    // A claim that is not the worker's leaves no entry behind.
    expect((await store.executions.markRunningAndClaim(refOf(second), 'w-one', 'b1', Date.now)).kind).toBe('not_head');
    expect(await running()).not.toContain(second.executionId);
    const claim = await store.executions.markRunningAndClaim(refOf(first), 'w-one', 'b1', Date.now);
    if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
    expect(await running()).toContain(first.executionId);
    expect(await waiting(first)).toBeNull();

    const ending: Ending = { status: 'completed', phase: 'run', exitCode: 0 };
    const done = terminalExecution(claim.record, ending, resultWithoutRun(ending, 'done'));
    const finished = await store.executions.finish(refOf(first), done, 'running', 'w-one');
    // The next head is counted as waiting for fair share in the same step: its priority comes back.
    expect(finished).toEqual({ kind: 'finished', nextHead: refOf(second), nextPriority: expect.any(Number) });
    expect(await running()).not.toContain(first.executionId);
    expect(await deadlineOf(refOf(first))).toBeNull();
    expect(await store.quotas.usage('acme')).toEqual({ ...before, pending: before.pending - 1 });
    expect((await store.executions.get(refOf(first)))?.status).toBe('completed');

    // A second finish changes nothing: one terminal state, released once.
    expect(await store.executions.finish(refOf(first), done, 'running', 'w-one')).toEqual({ kind: 'already', status: 'completed' });
    expect(await store.quotas.usage('acme')).toEqual({ ...before, pending: before.pending - 1 });
    expect(await deadlineOf(refOf(second))).not.toBeNull();
  });

  it('accepts an execution id that exists once: a repeat changes nothing and is not a head', async () => {
    const req = submission('twice');
    const first = await accepted(req);
    const again = await accepted({ ...req, acceptedAt: req.acceptedAt + 1_000 });
    expect(again.accepted).toMatchObject({ seq: first.accepted.seq, isHead: false, duplicate: true });
    expect(await store.executions.laneOf(refOf(req))).toEqual([refOf(req)]);
    expect(Number(await deadlineOf(refOf(req)))).toBe(first.deadlineAt);
    expect(dispatches).toEqual([refOf(req)]);
  });

  it('claims an Idempotency-Key in the same script: the key then names the execution and its seq; a key taken changes nothing; a refusal leaves it unclaimed', async () => {
    const claim = (req: SubmitRequest) => ({ fingerprint: 'fp-1', sessionId: req.sessionId, executionId: req.executionId, claimedAt: req.acceptedAt });
    const first = submission('keyed');
    const outcome = await accepted({ ...first, idempotency: { key: 'key-1', record: claim(first), ttlSeconds: 60 } });
    expect(await store.idempotency.read('acme', 'key-1')).toEqual({ ...claim(first), seq: outcome.accepted.seq });
    expect(await store.redis.ttl(store.idempotency.redisKey('acme', 'key-1'))).toBeGreaterThan(50);

    const usage = await store.quotas.usage('acme');
    const again = submission('keyed');
    const taken = await submit({ ...again, idempotency: { key: 'key-1', record: claim(again), ttlSeconds: 60 } });
    expect(taken).toEqual({ kind: 'keyTaken', record: { ...claim(first), seq: outcome.accepted.seq } });
    expect(await store.executions.get(refOf(again))).toBeNull();
    expect((await store.executions.laneOf(refOf(again))).map((r) => r.executionId)).toEqual([first.executionId]);
    expect(await store.quotas.usage('acme')).toEqual(usage);

    const refused = submission('keyed');
    const outcomeRefused = await submit({ ...refused, idempotency: { key: 'key-2', record: claim(refused), ttlSeconds: 60 } }, { pendingPerSession: 1 });
    expect(outcomeRefused.kind).toBe('refused');
    expect(await store.idempotency.read('acme', 'key-2')).toBeNull();
  });
});
