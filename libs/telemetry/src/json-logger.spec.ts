import { Logger } from '@nestjs/common';
import { createJsonLogger, lifecycleLine, logFields, NestJsonLogger, routeConsoleTo, type LogLevelName } from './json-logger';

/** A logger writing into an array, one parsed JSON object per line. */
function capture(level: LogLevelName, bindings?: Record<string, unknown>) {
  const lines: string[] = [];
  const pino = createJsonLogger({ app: 'worker', level, bindings, destination: { write: (chunk: string) => void lines.push(chunk) } });
  const entries = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger: new NestJsonLogger(pino), lines, entries };
}

describe('JSON logs', () => {
  it('writes one JSON object per line with level, ISO time, msg, app and the bindings', () => {
    const { logger, lines, entries } = capture('info', { workerId: 'w-1' });
    logger.log('worker w-1 ready (concurrency 4)', 'WorkerLifecycle');
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith('\n')).toBe(true);
    expect(lines[0].trimEnd()).not.toContain('\n');
    expect(entries()[0]).toMatchObject({ level: 'info', msg: 'worker w-1 ready (concurrency 4)', app: 'worker', workerId: 'w-1', context: 'WorkerLifecycle' });
    expect(new Date(entries()[0].time as string).toISOString()).toBe(entries()[0].time);
  });

  it('carries the fields of a record, and an error stack as `stack`', () => {
    const { logger, entries } = capture('debug');
    logger.log(logFields('execution finished', { executionId: 'x1', tenant: 'acme', sessionId: 's1' }), 'ExecutionRunner');
    logger.error('boom', 'Error: boom\n    at somewhere (file.ts:1:1)', 'ProblemFilter');
    logger.debug(new Error('bad thing'));
    const [finished, failed, debug] = entries();
    expect(finished).toMatchObject({ level: 'info', msg: 'execution finished', executionId: 'x1', tenant: 'acme', sessionId: 's1', context: 'ExecutionRunner' });
    expect(failed).toMatchObject({ level: 'error', msg: 'boom', context: 'ProblemFilter' });
    expect(failed.stack).toMatch(/at somewhere/);
    expect(debug).toMatchObject({ level: 'debug', msg: 'bad thing' });
    expect(debug.stack).toMatch(/^Error: bad thing/);
  });

  it('honours LOG_LEVEL, except for lifecycle lines, which always print at info', () => {
    const { logger, entries } = capture('warn');
    logger.log('routine detail');
    logger.debug('more detail');
    logger.log(lifecycleLine('kernelfleet api listening on http://127.0.0.1:1'), 'Main');
    logger.warn('something odd');
    expect(entries().map((e) => [e.level, e.msg])).toEqual([
      ['info', 'kernelfleet api listening on http://127.0.0.1:1'],
      ['warn', 'something odd'],
    ]);
    expect(entries()[0].lifecycle).toBe(true);
  });

  it('takes over Nest loggers created with a context', () => {
    const { logger, entries } = capture('info');
    Logger.overrideLogger(logger);
    try {
      new Logger('SessionKernels').log(logFields('culled idle kernel', { tenant: 'acme', sessionId: 's' }));
    } finally {
      Logger.overrideLogger(['error', 'warn', 'log']);
    }
    expect(entries()).toEqual([expect.objectContaining({ msg: 'culled idle kernel', context: 'SessionKernels', tenant: 'acme', sessionId: 's' })]);
  });
});

describe('console output', () => {
  const saved = { ...console };
  afterEach(() => Object.assign(console, saved));

  it('goes through the JSON logger; console.debug only at debug', () => {
    const { logger, entries } = capture('info');
    routeConsoleTo(logger, 'jupyterlab');
    console.warn('Connection lost, reconnecting in %d seconds.', 2);
    console.debug('websocket chatter');
    expect(entries()).toEqual([expect.objectContaining({ level: 'warn', msg: 'Connection lost, reconnecting in 2 seconds.', context: 'jupyterlab' })]);
  });
});
