import { Module } from '@nestjs/common';
import { FilesController } from './files.controller';
import { FilesService } from './files.service';

/**
 * Session files (docs/files.md), the api's side: the routes under `/v1/sessions/{id}/files`.
 * Configuration, the store and the event follower come from the api's core module.
 */
@Module({ controllers: [FilesController], providers: [FilesService] })
export class FilesModule {}
