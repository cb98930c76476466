import type { Execution } from '@kernelfleet/contracts';
import { descendants, processAlive } from '../support/processes';
import { Stack, type AppProcess } from '../support/stack';

/** Short leases so a lost worker is noticed within seconds. */
const FAST_LEASE = { WORKER_LEASE_MS: '2000', KERNEL_POOL_SIZE: '0' };

function workerOf(stack: Stack, workerId: string): AppProcess {
  const worker = stack.workers.find((w) => w.name === workerId);
  if (!worker) throw new Error(`no worker ${workerId} in ${stack.workers.map((w) => w.name)}`);
  return worker;
}

async function settledAll(stack: Stack, ids: string[]): Promise<Execution[]> {
  return Promise.all(ids.map((id) => stack.settled(id, 90_000)));
}

describe('a fleet of workers', () => {
  describe('sticky affinity', () => {
    let stack: Stack;
    beforeAll(async () => {
      // No worker dies here: the default lease, so a slow heartbeat on a busy machine moves
      // nothing, and a generous kernel start: ten sessions start kernels at once on two cores,
      // and a first execution whose kernel start times out leaves its session without a home.
      stack = await Stack.start({ workers: 3, workerEnv: { KERNEL_POOL_SIZE: '0', KERNEL_START_MAX_MS: '60000' } });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('runs every execution of a session on one worker and kernel, and spreads sessions over workers', async () => {
      const sessions = Array.from({ length: 10 }, (_, i) => `aff-${i}`);
      const results = await Promise.all(
        sessions.map(async (session) => {
          const runs: Execution[] = [];
          // A generous deadline: ten kernels start at once on two cores.
          for (let i = 0; i < 10; i++) runs.push(await stack.run(session, { code: `n = globals().get('n', 0) + 1\nprint(n)`, timeoutMs: 120_000 }));
          return runs;
        }),
      );
      const homes = new Set<string>();
      for (const runs of results) {
        if (new Set(runs.map((r) => r.kernel?.workerId)).size !== 1) {
          // Say where each execution ran and how it ended, and what the workers warned of.
          const where = runs.map((r) => `${r.executionId} ${r.status} on ${r.kernel?.workerId ?? '-'} gen ${r.kernel?.generation ?? '-'}: ${r.result?.output.slice(0, 200)}`);
          const warned = stack.workers.map((w) => `${w.name}: ${w.output.split('\n').filter((l) => /"level":(40|50)|warn|error/i.test(l)).slice(-20).join('\n')}`);
          throw new Error(`a session ran on more than one worker:\n${where.join('\n')}\n${warned.join('\n')}`);
        }
        expect(new Set(runs.map((r) => r.kernel?.generation))).toEqual(new Set([1]));
        expect(runs.map((r) => r.result?.output)).toEqual(Array.from({ length: 10 }, (_, i) => `${i + 1}\n`));
        homes.add(runs[0].kernel!.workerId);
      }
      expect(homes.size).toBeGreaterThanOrEqual(2);
    });

    it('does not let a session with 200 queued executions hold up another session', async () => {
      await stack.run('hol-busy', { code: 'import time' });
      const busy = [];
      for (let i = 0; i < 200; i++) busy.push(stack.submit('hol-busy', { code: 'time.sleep(0.05)', timeoutMs: 120_000 }));
      const busyIds = (await Promise.all(busy)).map((b) => b.executionId);
      const other = await stack.run('hol-other', { code: 'print("quick")' });
      expect(other.result?.output).toBe('quick\n');
      const busyNow = await Promise.all(busyIds.map((id) => stack.get(id)));
      expect(busyNow.filter((e) => e.status === 'queued').length).toBeGreaterThan(100);
      // Of the busy session, at most one execution started while the other one waited.
      const startedMeanwhile = busyNow.filter(
        (e) => e.timings.startedAt && e.timings.startedAt > other.timings.acceptedAt && e.timings.startedAt < other.timings.startedAt!,
      );
      expect(startedMeanwhile.length).toBeLessThanOrEqual(1);
      await stack.request('POST', '/v1/sessions/hol-busy/cancel-pending');
    });
  });

  describe('losing a worker', () => {
    let stack: Stack;
    beforeEach(async () => {
      stack = await Stack.start({ workers: 2, workerEnv: FAST_LEASE, workerProcessGroups: true });
    });
    afterEach(async () => {
      await stack?.stop();
    });

    it('SIGKILL: the running execution ends outcome_unknown, queued ones run elsewhere in order on a fresh kernel', async () => {
      const first = await stack.run('victim', { code: 'x = 1' });
      const home = first.kernel!.workerId;
      const running = await stack.submit('victim', { code: 'print("before", flush=True)\nimport time\ntime.sleep(60)', timeoutMs: 120_000 });
      const queued = [];
      for (let i = 0; i < 3; i++) {
        queued.push(await stack.submit('victim', { code: `print('x' in globals(), ${i})`, timeoutMs: 120_000 }));
      }
      await stack.waitForStatus(running.executionId, 'running');
      await workerOf(stack, home).stop('SIGKILL');

      const lost = await stack.settled(running.executionId, 30_000);
      expect(lost.status).toBe('outcome_unknown');
      expect(lost.result?.exitCode).toBeNull();
      const after = await settledAll(stack, queued.map((q) => q.executionId));
      if (after[0].status !== 'completed') console.log(JSON.stringify(after[0]), stack.workers.map((w) => w.output).join('\n'));
      expect(after.map((e) => e.status)).toEqual(['completed', 'completed', 'completed']);
      expect(after.map((e) => e.result?.output)).toEqual(['False 0\n', 'False 1\n', 'False 2\n']);
      expect(after.map((e) => e.kernel?.stateLost)).toEqual([true, false, false]);
      expect(new Set(after.map((e) => e.kernel?.generation))).toEqual(new Set([2]));
      expect(after.every((e) => e.kernel?.workerId !== home)).toBe(true);
      const order = after.map((e) => e.timings.startedAt!);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    });

    it('SIGKILL with retryOnKernelLoss: the running execution runs once more on a fresh kernel', async () => {
      const first = await stack.run('retry', { code: 'x = 1' });
      const home = first.kernel!.workerId;
      const running = await stack.submit('retry', {
        code: 'import time\ntime.sleep(4)\nprint("x" in globals(), "done")',
        retryOnKernelLoss: true,
        timeoutMs: 60_000,
      });
      await stack.waitForStatus(running.executionId, 'running');
      await workerOf(stack, home).stop('SIGKILL');
      const done = await stack.settled(running.executionId, 60_000);
      expect(done.status).toBe('completed');
      expect(done.result?.output).toBe('False done\n');
      expect(done.kernel?.workerId).not.toBe(home);
      expect(done.kernel?.stateLost).toBe(true);
      expect(done.kernel?.generation).toBe(2);
    });

    it('Jupyter server death: the running execution ends outcome_unknown, the worker carries on with a fresh kernel', async () => {
      const first = await stack.run('jupyter-dies', { code: 'x = 1' });
      const home = workerOf(stack, first.kernel!.workerId);
      const pid = Number(/started Jupyter server pid (\d+)/.exec(home.output)?.[1]);
      expect(pid).toBeGreaterThan(0);
      const running = await stack.submit('jupyter-dies', { code: 'import time\ntime.sleep(60)', timeoutMs: 120_000 });
      await stack.waitForStatus(running.executionId, 'running');
      // Let the server live long enough that the worker restarts it rather than giving up.
      await new Promise((r) => setTimeout(r, 10_500 - (Date.now() - first.timings.finishedAt!)));
      const kernelProcesses = descendants(pid);
      expect(kernelProcesses.length).toBeGreaterThan(0);
      process.kill(pid, 'SIGKILL');
      const lost = await stack.settled(running.executionId, 30_000);
      // Its kernels (and their sandboxes) do not outlive it, the one in a cell included.
      const until = Date.now() + 10_000;
      while (kernelProcesses.some(processAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(kernelProcesses.filter(processAlive)).toEqual([]);
      expect(lost.status).toBe('outcome_unknown');
      const next = await stack.run('jupyter-dies', { code: 'print("x" in globals())' });
      expect(next.status).toBe('completed');
      expect(next.result?.output).toBe('False\n');
      expect(next.kernel?.stateLost).toBe(true);
      expect(next.kernel?.generation).toBe(2);
      expect(home.child.exitCode).toBeNull();
    });

    it.each([
      ['the worker process', (worker: AppProcess) => worker.child.kill('SIGTERM')],
      // What systemd's default stop, `tini -g` and Ctrl-C in a terminal do: the Jupyter server must not take it.
      ["the worker's whole process group", (worker: AppProcess) => process.kill(-worker.child.pid!, 'SIGTERM')],
    ])('drain (SIGTERM to %s): the running execution completes, queued ones run elsewhere, the worker exits 0', async (_, terminate) => {
      const first = await stack.run('drained', { code: 'x = 1' });
      const home = workerOf(stack, first.kernel!.workerId);
      const running = await stack.submit('drained', { code: 'import time\ntime.sleep(2)\nprint(x)', timeoutMs: 60_000 });
      const queued = [];
      for (let i = 0; i < 2; i++) queued.push(await stack.submit('drained', { code: `print(${i})`, timeoutMs: 60_000 }));
      await stack.waitForStatus(running.executionId, 'running');
      const exited = new Promise<number | null>((r) => home.child.once('exit', (code) => r(code)));
      terminate(home);
      const done = await stack.settled(running.executionId, 30_000);
      expect(done.status).toBe('completed');
      expect(done.result?.output).toBe('1\n');
      const after = await settledAll(stack, queued.map((q) => q.executionId));
      expect(after.map((e) => e.result?.output)).toEqual(['0\n', '1\n']);
      expect(after.every((e) => e.kernel?.workerId !== home.name)).toBe(true);
      expect(after[0].kernel?.stateLost).toBe(true);
      expect(await exited).toBe(0);
    });
  });
});
