import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import pino from 'pino';
import { ConfigError, loadApiConfig, type ApiConfig } from '@kernelfleet/config';
import { ADMIN_LOGIN_PATH } from './admin/admin-access';
import { AdminQueuesBoard } from './admin/admin-queues-board';
import { createJsonLogger, lifecycleLine, NestJsonLogger, type LogLevelName } from '@kernelfleet/telemetry';
import { AppModule } from './app.module';
import { serveOpenApi } from './openapi/openapi-document';
import { registerBodyParsers } from './problems/body-parsers';
import { answerClientError } from './problems/client-errors';
import { frameworkErrors } from './problems/problem.filter';

/** Before the configuration is known: start-up failures, as JSON on stderr. */
const startLogger = () => createJsonLogger({ app: 'api', level: 'info', destination: pino.destination({ dest: 2, sync: true }) });

function configOrExit(): ApiConfig {
  try {
    return loadApiConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      startLogger().fatal({ problems: error.problems }, `kernelfleet api: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}

/** `/v1/sessions/{id}/files[/…]`: bodies the JSON parser must leave alone. */
const SESSION_FILES_ROUTE = /^\/v1\/sessions\/[^/?]+\/files(?:[/?]|$)/;

/** `/v1/executions/{id}/tool-calls/{callId}`: answers to tool calls, with a limit of their own. */
const TOOL_ANSWER_ROUTE = /^\/v1\/executions\/[^/]+\/tool-calls\/[^/]+\/?$/;
/** Ids are up to 128 characters; longer ones get the route's 400, not the router's 414. */
const MAX_PARAM_LENGTH = 1024;
/** How long an idle keep-alive connection stays open (see httpAdapter). */
const KEEP_ALIVE_MS = 65_000;

/**
 * The HTTP server: Fastify, with the api's own answers to what it refuses before a route runs.
 * Idle keep-alive connections stay open 65 s: a client that sends on a pooled connection at the
 * moment the server closes it gets "other side closed" for a request that never arrived; clients
 * close idle connections first when the server waits longer than they do (fetch: the server's
 * hint minus 1 s; load balancers: typically 60 s).
 */
function httpAdapter(): FastifyAdapter {
  return new FastifyAdapter({
    keepAliveTimeout: KEEP_ALIVE_MS,
    maxParamLength: MAX_PARAM_LENGTH,
    ignoreTrailingSlash: true,
    clientErrorHandler: answerClientError,
    frameworkErrors,
  });
}

async function main(): Promise<void> {
  const config = configOrExit();
  const logger = new NestJsonLogger(createJsonLogger({ app: 'api', level: config.logLevel as LogLevelName }));
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, httpAdapter(), { bodyParser: false, logger });
  // JSON escapes can make a body up to 6x its code (or a tool call's answer); the size checks of
  // the routes give the precise 413. A session file's body is its bytes, streamed to the worker as
  // they come (docs/files.md).
  const jsonLimit = (bytes: number) => bytes * 6 + 64 * 1024;
  registerBodyParsers(app.getHttpAdapter().getInstance(), {
    jsonLimit: (path) => jsonLimit(TOOL_ANSWER_ROUTE.test(path) ? config.limits.toolResultMaxBytes : config.limits.maxCodeBytes),
    streamed: SESSION_FILES_ROUTE,
    form: { path: ADMIN_LOGIN_PATH, limit: 4 * 1024 },
  });
  await app.get(AdminQueuesBoard).mount(app);
  app.enableShutdownHooks();
  serveOpenApi(app, (message) => logger.warn(message, 'OpenAPI'));
  app.getHttpServer().headersTimeout = KEEP_ALIVE_MS + 1_000;
  await app.listen(config.http.port, config.http.host);
  const url = `http://${config.http.host}:${config.http.port}`;
  logger.log(lifecycleLine(`kernelfleet api listening on ${url}`, { url }), 'Main');
  if (config.auth.tenantByKey.size === 0) {
    logger.log(lifecycleLine('API_KEYS is empty: only keys stored in Redis are accepted (npm run keys -- create <tenant>)'), 'Main');
  }
}

void main().catch((error: unknown) => {
  startLogger().fatal({ stack: (error as Error).stack }, `kernelfleet api failed to start: ${(error as Error).message ?? error}`);
  process.exit(1);
});
