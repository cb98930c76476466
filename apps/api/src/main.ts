import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import { ConfigError, loadApiConfig, type ApiConfig } from '@kernelfleet/config';
import { AdminQueuesBoard } from './admin/admin-queues-board';
import { AppModule } from './app.module';
import { bodyErrors, rejectMalformedUtf8 } from './problems/body-errors.middleware';
import { answerClientErrors } from './problems/client-errors';

function configOrExit(): ApiConfig {
  try {
    return loadApiConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`kernelfleet api: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    bodyParser: false,
    logger: ['error', 'warn', 'log'],
  });
  // JSON escapes can make a body up to 6x its code; the code-size check gives the precise 413.
  const limit = config.limits.maxCodeBytes * 6 + 64 * 1024;
  app.use(express.json({ limit, strict: false, verify: rejectMalformedUtf8 }));
  app.get(AdminQueuesBoard).mount(app);
  app.use(bodyErrors);
  app.disable('x-powered-by');
  app.enableShutdownHooks();
  answerClientErrors(app.getHttpServer());
  await app.listen(config.http.port, config.http.host);
  process.stdout.write(`kernelfleet api listening on http://${config.http.host}:${config.http.port}\n`);
  if (config.auth.tenantByKey.size === 0) {
    process.stdout.write('API_KEYS is empty: only keys stored in Redis are accepted (npm run keys -- create <tenant>)\n');
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`kernelfleet api failed to start: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
