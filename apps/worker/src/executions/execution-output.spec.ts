import type { ExecutionRef, ExecutionRepository } from '@kernelfleet/store';
import { ExecutionOutput } from './execution-output';

describe('ExecutionOutput', () => {
  const ref: ExecutionRef = { tenant: 'acme', sessionId: 's', executionId: 'e' };

  function make({ liveMaxChars = 16 * 1024 * 1024, connectedAtStart = false } = {}) {
    const emitted: { type: string; data: any }[] = [];
    let connected = connectedAtStart;
    const executions = {
      emit: async (_ref: ExecutionRef, type: string, data: unknown) => {
        emitted.push({ type, data });
        return emitted.length;
      },
      appendArtifact: async () => undefined,
    } as unknown as ExecutionRepository;
    const output = new ExecutionOutput(ref, executions, 64 * 1024 * 1024, liveMaxChars, () => connected);
    return { output, emitted, reconnect: () => (connected = true) };
  }

  it('holds events in order and sends them once it is back', async () => {
    const { output, emitted, reconnect } = make();
    output.stream('stdout', 'one\n');
    await new Promise((r) => setImmediate(r));
    output.display({ type: 'text', text: 'shown' } as never);
    output.stream('stderr', 'two\n');
    output.stream('stdout', 'three\n');
    await new Promise((r) => setImmediate(r));
    expect(emitted).toEqual([]);

    reconnect();
    await output.settle();
    expect(emitted.map((e) => [e.type, e.data.text ?? e.data.type])).toEqual([
      ['stdout', 'one\n'],
      ['display', 'shown'],
      ['stderr', 'two\n'],
      ['stdout', 'three\n'],
    ]);
  });

  it('holds at most 1 MiB: the oldest output goes, a notice says so, the newest is kept', async () => {
    const { output, emitted, reconnect } = make();
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 3 * 1024; i++) output.stream('stdout', line);
    output.stream('stdout', 'last\n');
    await new Promise((r) => setImmediate(r));
    expect(emitted).toEqual([]);

    reconnect();
    await output.settle();
    expect(emitted[0]).toEqual({ type: 'stderr', data: { text: expect.stringMatching(/^\[kernelfleet: \d+ characters of output were not streamed live/) } });
    const streamed = emitted.slice(1).map((e) => e.data.text as string).join('');
    expect(streamed.length).toBe(1024 * 1024);
    expect(streamed.endsWith(`${line}last\n`)).toBe(true);
    expect(output.finish().totalBytes).toBe(3 * 1024 * 1024 + 5);
  });

  it('streams live in events of at most 64 KiB, up to its live budget, then one notice', async () => {
    const { output, emitted } = make({ liveMaxChars: 200 * 1024, connectedAtStart: true });
    const line = `${'y'.repeat(1023)}\n`;
    output.stream('stdout', line.repeat(150)); // one 150 KiB piece, as a kernel sends a flood
    output.stream('stdout', line.repeat(100));
    await output.settle();
    const sizes = emitted.filter((e) => e.type === 'stdout').map((e) => (e.data.text as string).length);
    expect(Math.max(...sizes)).toBe(64 * 1024);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(200 * 1024);
    expect(emitted.at(-1)).toEqual({ type: 'stderr', data: { text: expect.stringContaining('live output stops after 204800 characters') } });
    output.stream('stdout', 'more\n');
    await output.settle();
    expect(emitted.at(-1)?.type).toBe('stderr');
    expect(output.finish().totalBytes).toBe(250 * 1024 + 5);
  });
});
