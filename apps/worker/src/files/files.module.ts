import { Module } from '@nestjs/common';
import { SessionFileOps } from './session-file-ops.service';

/**
 * Session files (docs/files.md), the worker's side: the I/O of the file operations that reach
 * this worker in their session's lane. Its FleetStore and configuration come from the worker module.
 */
@Module({ providers: [SessionFileOps], exports: [SessionFileOps] })
export class FilesModule {}
