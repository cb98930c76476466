import { format } from 'node:util';
import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger } from 'pino';

/** LOG_LEVEL values (libs/config), from the quietest. */
export type LogLevelName = 'error' | 'warn' | 'info' | 'debug';

export interface JsonLoggerOptions {
  /** `api` or `worker`: the `app` field of every line. */
  app: string;
  level: LogLevelName;
  /** Fields every line carries (the worker: `workerId`). */
  bindings?: Record<string, unknown>;
  /** Default: stdout, written synchronously (a line is out before the process can exit). */
  destination?: DestinationStream;
}

/**
 * A pino logger writing one JSON object per line: `level` (a name: `info`, `warn`…), `time`
 * (ISO 8601), `app`, `pid`, `msg`, the bindings, and whatever fields a call adds.
 */
export function createJsonLogger(options: JsonLoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { app: options.app, pid: process.pid, ...options.bindings },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A message with fields for the JSON line: `logger.log(logFields('execution finished', { executionId }))`. */
export interface LogRecord {
  msg: string;
  /**
   * Start-up and shut-down milestones (listening, ready, draining…): logged at `info` whatever
   * LOG_LEVEL says. A handful per process life; operators and the tests' process harness wait
   * for them.
   */
  lifecycle?: boolean;
  [field: string]: unknown;
}

export function logFields(msg: string, fields: Record<string, unknown> = {}): LogRecord {
  return { ...fields, msg };
}

/** A lifecycle line (see LogRecord.lifecycle). */
export function lifecycleLine(msg: string, fields: Record<string, unknown> = {}): LogRecord {
  return { ...fields, msg, lifecycle: true };
}

const isRecord = (value: unknown): value is LogRecord =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as LogRecord).msg === 'string';

const looksLikeStack = (value: unknown): value is string => typeof value === 'string' && /\n\s+at /.test(value);

type PinoLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Nest's logger interface over pino, so Nest's own lines (and every `new Logger(Context)` of
 * the apps) come out as JSON. The Nest context becomes `context`; a `LogRecord` message brings
 * its fields; an error's stack becomes `stack`.
 */
export class NestJsonLogger implements LoggerService {
  private readonly lifecycle: Logger;

  constructor(readonly pino: Logger) {
    const quiet = pino.levelVal > pino.levels.values.info;
    this.lifecycle = quiet ? pino.child({}, { level: 'info' }) : pino;
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: PinoLevel, message: unknown, params: unknown[]): void {
    // A line of a level that is off costs nothing (debug lines are on every request's path).
    // Info lines go on: a lifecycle line is written whatever the level (see `lifecycle`).
    if (level !== 'info' && !this.pino.isLevelEnabled(level)) return;
    const fields: Record<string, unknown> = {};
    const rest = [...params];
    // Nest appends the context of a `new Logger(Context)` as the last parameter.
    if (typeof rest[rest.length - 1] === 'string' && !looksLikeStack(rest[rest.length - 1])) fields.context = rest.pop();
    const stack = rest.find(looksLikeStack);
    if (stack) fields.stack = stack;
    let msg: string;
    let target = this.pino;
    if (isRecord(message)) {
      const { msg: text, lifecycle, ...extra } = message;
      Object.assign(fields, extra);
      msg = text;
      if (lifecycle) {
        fields.lifecycle = true;
        if (level === 'info') target = this.lifecycle;
      }
    } else if (message instanceof Error) {
      msg = message.message;
      fields.stack ??= message.stack;
    } else {
      msg = typeof message === 'string' ? message : JSON.stringify(message);
    }
    target[level](fields, msg);
  }
}

/**
 * Sends `console.*` (libraries such as @jupyterlab/services print on it) through the JSON
 * logger, so every line of the process stays one JSON object. `console.debug` is dropped unless
 * the logger's level is debug (its arguments are not even formatted).
 */
export function routeConsoleTo(logger: NestJsonLogger, context = 'console'): void {
  const line = (args: unknown[]) => format(...args);
  console.log = (...args: unknown[]) => logger.log(line(args), context);
  console.info = (...args: unknown[]) => logger.log(line(args), context);
  console.warn = (...args: unknown[]) => logger.warn(line(args), context);
  console.error = (...args: unknown[]) => logger.error(line(args), context);
  console.debug = logger.pino.isLevelEnabled('debug') ? (...args: unknown[]) => logger.debug(line(args), context) : () => undefined;
}
