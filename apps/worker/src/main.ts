import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import pino from 'pino';
import { ConfigError, loadWorkerConfig, type WorkerConfig } from '@kernelfleet/config';
import { createJsonLogger, NestJsonLogger, routeConsoleTo, type LogLevelName } from '@kernelfleet/telemetry';
import { WorkerModule } from './worker.module';

/** Start-up failures, as JSON on stderr (with the worker id once it is known). */
const startLogger = (workerId?: string) =>
  createJsonLogger({ app: 'worker', level: 'info', bindings: workerId ? { workerId } : {}, destination: pino.destination({ dest: 2, sync: true }) });

function configOrExit(): WorkerConfig {
  try {
    return loadWorkerConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      startLogger().fatal({ problems: error.problems }, `kernelfleet worker: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  // Every line of a worker names it.
  const logger = new NestJsonLogger(createJsonLogger({ app: 'worker', level: config.logLevel as LogLevelName, bindings: { workerId: config.workerId } }));
  // @jupyterlab/services prints on the console (and narrates every websocket on console.debug,
  // kept for LOG_LEVEL=debug): as JSON lines too.
  routeConsoleTo(logger, 'jupyterlab');
  const app = await NestFactory.createApplicationContext(WorkerModule.forConfig(config), { logger });
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
          logger.fatal({ msg: `kernelfleet worker: shutdown failed: ${(error as Error).message ?? error}`, stack: (error as Error).stack });
          process.exit(1);
        },
      );
    });
  }
}

void main().catch((error: unknown) => {
  startLogger(process.env.WORKER_ID).fatal({ stack: (error as Error).stack }, `kernelfleet worker failed to start: ${(error as Error).message ?? error}`);
  process.exit(1);
});
