import { KernelfleetClient } from '@kernelfleet/client';
import { CLIENT_EXECUTION_COMMANDS, CLIENT_STREAMED_COMMANDS, commandsPerExecution, WARM_EXECUTION_COMMANDS, type CommandCount } from '../support/redis-commands';
import { TestRedis } from '../support/redis-server';
import { Stack } from '../support/stack';

/**
 * The guard on what a warm execution costs Redis (docs/benchmarks.md): one api and one worker
 * on a Redis of their own, `1+1` with wait=true in a warm session, counted with MONITOR. Counts
 * are stable where times are not; a change that makes every execution cost more commands fails
 * here, and the figure is lowered when a change makes it cheaper.
 */
describe('Redis commands of one warm execution', () => {
  let redis: TestRedis;
  let stack: Stack;

  beforeAll(async () => {
    redis = await TestRedis.start();
    stack = await Stack.start({ apiEnv: { REDIS_URL: redis.url }, workerEnv: { REDIS_URL: redis.url } });
  });

  afterAll(async () => {
    await stack?.stop();
    await redis?.stop();
  });

  /** Fails, printing the counts by command and by connection, when `cost` is over `recorded` by more than 10 %. */
  const expectWithin = (cost: CommandCount, recorded: { total: number; sent: number }) => {
    const seen = JSON.stringify({ total: cost.total, sent: cost.sent, scripts: cost.scripts, byName: cost.byName, sentBy: cost.sentBy });
    expect({ seen, total: cost.total <= recorded.total * 1.1 }).toEqual({ seen, total: true });
    expect({ seen, sent: cost.sent <= recorded.sent * 1.1 }).toEqual({ seen, sent: true });
  };

  it('stays within 10 % of the recorded figure', async () => {
    const runOne = async () => {
      const execution = await stack.run('cost', { code: '1+1' });
      expect(execution.status).toBe('completed');
    };
    for (let i = 0; i < 3; i++) await runOne();
    expectWithin(await commandsPerExecution(redis.url, runOne, 20), WARM_EXECUTION_COMMANDS);
  });

  it("stays within 10 % of the recorded figure through the client library's executePython", async () => {
    const client = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const runOne = async () => {
      const result = await client.executePython('1+1', { sessionId: 'cost-client' });
      expect(result.status).toBe('completed');
    };
    for (let i = 0; i < 3; i++) await runOne();
    expectWithin(await commandsPerExecution(redis.url, runOne, 20), CLIENT_EXECUTION_COMMANDS);
  });

  it("stays within 10 % of the recorded figure through executePython following the output (onChunk)", async () => {
    const client = new KernelfleetClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const runOne = async () => {
      const chunks: string[] = [];
      const result = await client.executePython('print(1)', { sessionId: 'cost-streamed', onChunk: (text) => chunks.push(text) });
      expect({ status: result.status, chunks: chunks.join('') }).toEqual({ status: 'completed', chunks: '1\n' });
    };
    for (let i = 0; i < 3; i++) await runOne();
    expectWithin(await commandsPerExecution(redis.url, runOne, 20), CLIENT_STREAMED_COMMANDS);
  });
});
