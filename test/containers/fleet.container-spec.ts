import { execFileSync } from 'node:child_process';
import type { Execution } from '@kernelfleet/contracts';
import { expectProblem } from '../support/problem-assertions';
import { readSse } from '../support/sse-client';
import { ContainerFleet } from './support/container-fleet';

/**
 * docker-compose.yml's fleet in containers of the images `npm run images` built: Redis with AOF,
 * two api replicas, three workers; attacked as production attacks it (docker kill, docker stop,
 * a Redis restart, an api replica killed). The statuses are those of the process tests
 * (test/e2e/failover.e2e-spec.ts, redis-outage.e2e-spec.ts).
 */
jest.setTimeout(300_000);

const REVISION = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();

function inImage(image: string, script: string): string {
  return execFileSync('docker', ['run', '--rm', '--entrypoint', 'sh', image, '-c', script], { encoding: 'utf8' });
}

describe('the images', () => {
  it.each(['kernelfleet-api:local', 'kernelfleet-worker:local'])('%s is labelled with the revision and holds no build tools, dev packages or build CA', (image) => {
    const labels = JSON.parse(execFileSync('docker', ['image', 'inspect', '--format', '{{json .Config.Labels}}', image], { encoding: 'utf8' }));
    // The working tree may hold uncommitted changes (scripts/images.js says so); the label is HEAD.
    expect(labels['org.opencontainers.image.revision']).toBe(REVISION);
    const found = inImage(
      image,
      'for t in gcc cc make g++ tsc; do command -v $t; done; ls -d node_modules/typescript node_modules/jest node_modules/ts-jest /tmp/build-ca* 2>/dev/null; echo node $(node --version)',
    );
    // Only the last line: nothing else was found.
    expect(found.trim()).toMatch(/^node v20\.\d+\.\d+$/);
  });

  it('the worker image has the kernels\' Python, tini and nft; the api image has none of them', () => {
    expect(inImage('kernelfleet-worker:local', '.venv/bin/python -c "import ipykernel, numpy, pandas, matplotlib; print(\'ok\')"; command -v tini; command -v nft')).toBe(
      'ok\n/usr/bin/tini\n/usr/sbin/nft\n',
    );
    expect(inImage('kernelfleet-api:local', 'for t in python3 tini nft; do command -v $t; done; ls -d .venv python 2>/dev/null; echo done')).toBe('done\n');
  });
});

describe('the compose fleet in containers', () => {
  let fleet: ContainerFleet;
  // A short lease so that a killed worker is noticed within seconds, as in the process tests.
  beforeAll(async () => {
    fleet = await ContainerFleet.start({ apis: 2, workers: 3, env: { worker: { WORKER_LEASE_MS: '2000' } } });
  }, 300_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  async function settledAll(ids: string[], timeoutMs = 120_000): Promise<Execution[]> {
    return Promise.all(ids.map((id) => fleet.settled(id, timeoutMs)));
  }

  it('answers the contract through either replica: run, read back, bad input, no key', async () => {
    const run = await fleet.run('basics', { code: 'print(6 * 7)' });
    expect(run).toMatchObject({ status: 'completed', result: { output: '42\n', exitCode: 0 } });
    const read = await fleet.request('GET', `/v1/executions/${run.executionId}`, undefined, { url: fleet.urls[1] });
    expect(read.json).toMatchObject({ executionId: run.executionId, status: 'completed' });
    expectProblem(await fleet.request('POST', '/v1/sessions/basics/executions', { code: 42 }), 400);
    expectProblem(await fleet.request('GET', `/v1/executions/${run.executionId}`, undefined, { key: 'no-such-key' }), 401);
  });

  it('runs kernels as unprivileged users that cannot reach Redis or the api', async () => {
    const code = [
      'import os, socket',
      'def reach(host, port):',
      '    try:',
      '        socket.create_connection((host, port), timeout=2).close()',
      '        return "open"',
      '    except OSError as error:',
      '        return type(error).__name__',
      'socket.gethostbyname("redis")',
      'print(os.getuid(), reach("redis", 6379), reach("api", 8080), [k for k in os.environ if "REDIS" in k])',
    ].join('\n');
    const run = await fleet.run('walls', { code, timeoutMs: 30_000 });
    // The names resolve (no gaierror above); the connections are refused or time out.
    const refused = '(ConnectionRefusedError|TimeoutError|PermissionError)';
    expect(run.result?.output).toMatch(new RegExp(`^\\d+ ${refused} ${refused} \\[\\]\n$`));
    expect(Number(run.result!.output.split(' ')[0])).toBeGreaterThan(0);
  });

  it('keeps a session on one worker container and its state between executions', async () => {
    const runs: Execution[] = [];
    for (let i = 0; i < 5; i++) runs.push(await fleet.run('sticky', { code: 'n = globals().get("n", 0) + 1\nprint(n)' }));
    expect(runs.map((r) => r.result?.output)).toEqual(['1\n', '2\n', '3\n', '4\n', '5\n']);
    expect(new Set(runs.map((r) => r.kernel?.workerId)).size).toBe(1);
    expect(() => fleet.workerContainer(runs[0].kernel!.workerId)).not.toThrow();
  });

  it('streams output over SSE through one replica while the other, which took the submission, is killed', async () => {
    const accepted = await fleet.submit('sse', { code: 'import time\nfor i in range(8):\n    print("line", i, flush=True)\n    time.sleep(0.5)', timeoutMs: 60_000 });
    const stream = readSse(`${fleet.urls[1]}/v1/executions/${accepted.executionId}/events`, fleet.headers(), undefined, 60_000);
    await fleet.waitForStatus(accepted.executionId, 'running');
    await fleet.docker('kill', fleet.apis[0]);
    const read = await stream;
    expect(read.status).toBe(200);
    expect(read.events.map((e) => Number(e.id))).toEqual(read.events.map((_, i) => i + 1));
    expect(read.events.at(-1)?.event).toBe('result');
    const text = read.events.filter((e) => e.event === 'stdout').map((e) => (JSON.parse(e.data) as { text: string }).text);
    expect(text.join('')).toBe(Array.from({ length: 8 }, (_, i) => `line ${i}\n`).join(''));
    await fleet.docker('start', fleet.apis[0]);
    await fleet.waitUntil(fleet.apis[0], (s) => s.Health?.Status === 'healthy');
  });

  it('docker kill of a worker: the running execution ends outcome_unknown, the queued ones run in order on a fresh kernel', async () => {
    const first = await fleet.run('killed', { code: 'x = 1' });
    const home = fleet.workerContainer(first.kernel!.workerId);
    const running = await fleet.submit('killed', { code: 'import time\ntime.sleep(60)', timeoutMs: 120_000 });
    const queued = [];
    for (let i = 0; i < 2; i++) queued.push(await fleet.submit('killed', { code: `print('x' in globals(), ${i})`, timeoutMs: 120_000 }));
    await fleet.waitForStatus(running.executionId, 'running');
    await fleet.docker('kill', home);

    expect(await fleet.settled(running.executionId, 60_000)).toMatchObject({ status: 'outcome_unknown', result: { exitCode: null } });
    const after = await settledAll(queued.map((q) => q.executionId));
    expect(after.map((e) => [e.status, e.result?.output, e.kernel?.stateLost])).toEqual([
      ['completed', 'False 0\n', true],
      ['completed', 'False 1\n', false],
    ]);
    expect(after[0].kernel!.generation).toBeGreaterThan(first.kernel!.generation);
    expect(after[0].timings.startedAt!).toBeLessThan(after[1].timings.startedAt!);
    // Restarted, the container comes back healthy.
    await fleet.docker('start', home);
    await fleet.waitUntil(home, (s) => s.Health?.Status === 'healthy');
  });

  it('docker stop of a worker drains it: the running execution completes, the queued ones run elsewhere, exit code 0', async () => {
    const first = await fleet.run('drained', { code: 'x = 1' });
    const home = fleet.workerContainer(first.kernel!.workerId);
    const running = await fleet.submit('drained', { code: 'import time\ntime.sleep(3)\nprint(x)', timeoutMs: 60_000 });
    const queued = [];
    for (let i = 0; i < 2; i++) queued.push(await fleet.submit('drained', { code: `print(${i})`, timeoutMs: 60_000 }));
    await fleet.waitForStatus(running.executionId, 'running');
    // docker-compose.yml's stop_grace_period: SIGTERM, then up to 660 s to drain.
    await fleet.docker('stop', home, '-t', '660');
    expect(await fleet.state(home)).toMatchObject({ Status: 'exited', ExitCode: 0 });
    expect(await fleet.settled(running.executionId)).toMatchObject({ status: 'completed', result: { output: '1\n' } });
    const after = await settledAll(queued.map((q) => q.executionId));
    expect(after.map((e) => [e.status, e.result?.output])).toEqual([
      ['completed', '0\n'],
      ['completed', '1\n'],
    ]);
    expect(after.every((e) => e.kernel?.workerId !== first.kernel!.workerId)).toBe(true);
    expect(after[0].kernel?.stateLost).toBe(true);
    await fleet.docker('start', home);
    await fleet.waitUntil(home, (s) => s.Health?.Status === 'healthy');
  });

  it('a Redis restart loses nothing: 503 while it is down, every accepted execution completes after', async () => {
    const sessions = ['outage-a', 'outage-b', 'outage-c'];
    for (const session of sessions) await fleet.run(session, { code: 'x = 0' });
    const expected = new Map<string, string>();
    for (const session of sessions) {
      const sleeper = await fleet.submit(session, { code: 'import time\ntime.sleep(3)\nx += 100\nprint(x)', timeoutMs: 120_000 });
      expected.set(sleeper.executionId, '100\n');
      for (let k = 1; k <= 3; k++) {
        const next = await fleet.submit(session, { code: `x += ${k}\nprint(x)`, timeoutMs: 120_000 });
        expected.set(next.executionId, `${100 + (k * (k + 1)) / 2}\n`);
      }
    }
    await fleet.docker('stop', fleet.redis!);
    const refused = await fleet.request('POST', '/v1/sessions/outage-a/executions', { code: 'print(1)' });
    expectProblem(refused, 503);
    expect((await fetch(`${fleet.url}/health/ready`)).status).toBe(503);
    await fleet.docker('start', fleet.redis!);
    await fleet.waitUntil(fleet.redis!, (s) => s.Health?.Status === 'healthy');

    const results = await settledAll([...expected.keys()]);
    expect(results.map((e) => [e.status, e.result?.output])).toEqual([...expected.values()].map((output) => ['completed', output]));
    const after = await fleet.run('outage-a', { code: 'print(x)' });
    expect(after).toMatchObject({ status: 'completed', result: { output: '106\n' }, kernel: { stateLost: false } });
  });
});
