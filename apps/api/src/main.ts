import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { type NextFunction, type Request, type Response } from 'express';
import pino from 'pino';
import { ConfigError, loadApiConfig, type ApiConfig } from '@kernelfleet/config';
import { AdminQueuesBoard } from './admin/admin-queues-board';
import { createJsonLogger, lifecycleLine, NestJsonLogger, type LogLevelName } from '@kernelfleet/telemetry';
import { AppModule } from './app.module';
import { serveOpenApi } from './openapi/openapi-document';
import { bodyErrors, rejectMalformedUtf8 } from './problems/body-errors.middleware';
import { answerClientErrors } from './problems/client-errors';

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

/** How long an idle keep-alive connection stays open (see keepConnectionsLonger). */
const KEEP_ALIVE_MS = 65_000;

/**
 * Idle keep-alive connections stay open 65 s (Node's default is 5 s). A client that sends on a
 * pooled connection at the moment the server closes it gets "other side closed" for a request
 * that never arrived; clients close idle connections first when the server waits longer than they
 * do (fetch: the server's hint minus 1 s; load balancers: typically 60 s).
 */
function keepConnectionsLonger(server: import('node:http').Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 1_000;
}

async function main(): Promise<void> {
  const config = configOrExit();
  const logger = new NestJsonLogger(createJsonLogger({ app: 'api', level: config.logLevel as LogLevelName }));
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { bodyParser: false, logger });
  // JSON escapes can make a body up to 6x its code (or a tool call's answer); the size checks of
  // the routes give the precise 413. Answers to tool calls have a limit of their own.
  const bodyLimit = (bytes: number) => express.json({ limit: bytes * 6 + 64 * 1024, strict: false, verify: rejectMalformedUtf8 });
  app.use('/v1/executions/:executionId/tool-calls/:callId', bodyLimit(config.limits.toolResultMaxBytes));
  // A session file's body is its bytes, streamed to the worker as they come (docs/files.md).
  const json = bodyLimit(config.limits.maxCodeBytes);
  app.use((req: Request, res: Response, next: NextFunction) => (SESSION_FILES_ROUTE.test(req.url) ? next() : json(req, res, next)));
  app.get(AdminQueuesBoard).mount(app);
  app.use(bodyErrors);
  app.disable('x-powered-by');
  app.enableShutdownHooks();
  serveOpenApi(app, (message) => logger.warn(message, 'OpenAPI'));
  answerClientErrors(app.getHttpServer());
  keepConnectionsLonger(app.getHttpServer());
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
