import type { Execution, OwnerDisposal } from '@kernelfleet/contracts';
import { Stack } from '../support/stack';
import { expectProblem, type Answer } from '../support/problem-assertions';

jest.setTimeout(60_000);

/**
 * Owners and dispose by owner (seed §2.4; DESIGN.md §4 `DELETE /v1/owners/{ownerId}`): a
 * session whose only owner goes is shut down like `DELETE /v1/sessions/{id}`; a shared one just
 * loses that owner.
 */


describe('owners', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** Runs code to completion and answers the execution. */
  async function run(session: string, body: Record<string, unknown>): Promise<Execution> {
    const execution = await stack.run(session, body);
    expect({ session, status: execution.status, output: execution.result?.output }).toMatchObject({ session, status: 'completed' });
    return execution;
  }

  async function ownersOf(session: string): Promise<string[]> {
    const res = await stack.request('GET', `/v1/sessions/${session}`);
    expect(res.status).toBe(200);
    return res.json.owners;
  }

  async function disposeOwner(ownerId: string, key?: string): Promise<Answer> {
    return stack.request('DELETE', `/v1/owners/${ownerId}`, undefined, { key });
  }

  /** A disposed session has no home worker (the disposal un-homes it in Redis; its worker then shuts the kernel down). */
  async function waitUntilShutDown(session: string): Promise<void> {
    const until = Date.now() + 10_000;
    while ((await stack.request('GET', `/v1/sessions/${session}`)).json.workerId !== null) {
      if (Date.now() > until) throw new Error(`session ${session} still has a kernel after its disposal`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('a shared session survives losing one owner and is shut down when its last owner goes', async () => {
    const first = await run('shared', { code: 'kept = 41', ownerId: 'alice' });
    await run('shared', { code: 'pass', ownerId: 'bob' });
    expect(await ownersOf('shared')).toEqual(['alice', 'bob']);

    const alice = await disposeOwner('alice');
    expect(alice.status).toBe(200);
    expect(alice.json).toEqual({ ownerId: 'alice', disposed: [], detached: ['shared'] } satisfies OwnerDisposal);
    expect(await ownersOf('shared')).toEqual(['bob']);
    // alice holds nothing any more.
    expectProblem(await disposeOwner('alice'), 404, /alice/);

    // Same kernel, globals intact.
    const survived = await run('shared', { code: 'print(kept + 1)', ownerId: 'bob' });
    expect(survived.result?.output).toBe('42\n');
    expect(survived.kernel).toMatchObject({ generation: first.kernel!.generation, restarted: false, stateLost: false });

    const bob = await disposeOwner('bob');
    expect(bob.status).toBe(200);
    expect(bob.json).toEqual({ ownerId: 'bob', disposed: ['shared'], detached: [] } satisfies OwnerDisposal);
    expect(await ownersOf('shared')).toEqual([]);
    await waitUntilShutDown('shared');

    const fresh = await run('shared', { code: "print('kept' in globals())", ownerId: 'bob' });
    expect(fresh.result?.output).toBe('False\n');
    expect(fresh.kernel).toMatchObject({ restarted: true, stateLost: false });
    expect(fresh.kernel!.generation).toBeGreaterThan(first.kernel!.generation);
  });

  it("disposing an owner shuts every session it alone holds and none of another owner's", async () => {
    const sessions: [string, string[]][] = [
      ['ann-1', ['ann']],
      ['ann-2', ['ann']],
      ['ben-1', ['ben']],
      ['ann-ben', ['ann', 'ben']],
    ];
    const before = new Map<string, Execution>();
    await Promise.all(
      sessions.map(async ([session, owners]) => {
        for (const ownerId of owners) before.set(session, await run(session, { code: `tag = '${session}'`, ownerId }));
      }),
    );

    const res = await disposeOwner('ann');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ownerId: 'ann', disposed: ['ann-1', 'ann-2'], detached: ['ann-ben'] } satisfies OwnerDisposal);
    expect(await ownersOf('ann-ben')).toEqual(['ben']);
    expect(await ownersOf('ben-1')).toEqual(['ben']);

    await Promise.all(['ann-1', 'ann-2'].map(waitUntilShutDown));
    for (const session of ['ann-1', 'ann-2']) {
      const after = await run(session, { code: "print('tag' in globals())" });
      expect({ session, output: after.result?.output }).toEqual({ session, output: 'False\n' });
      expect(after.kernel!.generation).toBeGreaterThan(before.get(session)!.kernel!.generation);
    }
    for (const session of ['ben-1', 'ann-ben']) {
      const after = await run(session, { code: 'print(tag)', ownerId: 'ben' });
      expect({ session, output: after.result?.output }).toEqual({ session, output: `${session}\n` });
      expect(after.kernel).toMatchObject({ generation: before.get(session)!.kernel!.generation, restarted: false });
    }
  });

  it('without ownerId the session id is its owner, only while the session has no other', async () => {
    await run('solo', { code: 'x = 1' });
    expect(await ownersOf('solo')).toEqual(['solo']);

    await run('owned', { code: 'x = 1', ownerId: 'olga' });
    await run('owned', { code: 'y = 2' });
    expect(await ownersOf('owned')).toEqual(['olga']);
    expectProblem(await disposeOwner('owned'), 404);

    const res = await disposeOwner('solo');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ownerId: 'solo', disposed: ['solo'], detached: [] } satisfies OwnerDisposal);
    await waitUntilShutDown('solo');
    expect((await run('solo', { code: "print('x' in globals())" })).result?.output).toBe('False\n');
    // `owned` was not touched.
    expect((await run('owned', { code: 'print(x + y)' })).result?.output).toBe('3\n');
  });

  it('per-call executions register no owner, not even the session itself', async () => {
    await run('per-call', { code: 'print(1)', kernelMode: 'per-call', ownerId: 'pat' });
    await run('per-call', { code: 'print(2)', kernelMode: 'per-call' });
    expect(await ownersOf('per-call')).toEqual([]);
    expectProblem(await disposeOwner('pat'), 404);
    expectProblem(await disposeOwner('per-call'), 404);
  });

  it("DELETE /v1/sessions/{id} clears the session's owners", async () => {
    await run('deleted', { code: 'pass', ownerId: 'dora' });
    await run('deleted', { code: 'pass', ownerId: 'dan' });
    expect(await ownersOf('deleted')).toEqual(['dan', 'dora']);
    expect((await stack.request('DELETE', '/v1/sessions/deleted')).status).toBe(200);
    expect(await ownersOf('deleted')).toEqual([]);
    expectProblem(await disposeOwner('dora'), 404);
    expectProblem(await disposeOwner('dan'), 404);
  });

  it("another tenant's owner answers 404 exactly like an unknown one, and is left alone", async () => {
    await run('guarded', { code: 'secret = 7', ownerId: 'eve' });
    const theirs = await disposeOwner('eve', stack.otherKey);
    const unknown = await disposeOwner('nobody', stack.otherKey);
    expectProblem(theirs, 404);
    expect(JSON.parse(theirs.text.split('eve').join('<id>'))).toEqual(JSON.parse(unknown.text.split('nobody').join('<id>')));

    expect(await ownersOf('guarded')).toEqual(['eve']);
    const after = await run('guarded', { code: 'print(secret)', ownerId: 'eve' });
    expect(after.result?.output).toBe('7\n');
    expect(after.kernel?.restarted).toBe(false);
  });

  it('answers 400 problem+json naming ownerId for a malformed owner id', async () => {
    expectProblem(await disposeOwner('no%20spaces'), 400, /ownerId/);
    expectProblem(await disposeOwner('x'.repeat(129)), 400, /ownerId/);
  });
});
