import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ConfigError, loadWorkerConfig } from '@kernelfleet/config';
import { WorkerModule } from './worker.module';

async function main(): Promise<void> {
  try {
    loadWorkerConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`kernelfleet worker: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  // @jupyterlab/services narrates every websocket on console.debug; keep it for LOG_LEVEL=debug.
  if (process.env.LOG_LEVEL !== 'debug') console.debug = () => undefined;
  const app = await NestFactory.createApplicationContext(WorkerModule, {
    logger: process.env.LOG_LEVEL === 'debug' ? ['error', 'warn', 'log', 'debug'] : ['error', 'warn', 'log'],
  });
  // Not enableShutdownHooks(): it re-raises the signal after the hooks, so the exit code would
  // say "killed". A drained worker exits 0.
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      void app.close().then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`kernelfleet worker: shutdown failed: ${(error as Error).stack ?? error}\n`);
          process.exit(1);
        },
      );
    });
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`kernelfleet worker failed to start: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
