import { Stack } from '../support/stack';

describe('one execution, end to end', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs print(6*7) and answers 42 with wait=true', async () => {
    const execution = await stack.run('smoke', { code: 'print(6*7)' });
    expect(execution.status).toBe('completed');
    expect(execution.result?.output).toBe('42\n');
    expect(execution.result?.exitCode).toBe(0);
  });
});
