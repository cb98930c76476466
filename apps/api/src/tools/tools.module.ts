import { Module } from '@nestjs/common';
import { ToolCallsController } from './tool-calls.controller';
import { ToolCallsService } from './tool-calls.service';

/** Tool calls from Python to the client (docs/tools.md), the api's side: the answers. */
@Module({ controllers: [ToolCallsController], providers: [ToolCallsService] })
export class ToolsModule {}
