import { Module } from '@nestjs/common';
import { ToolBridge } from './tool-bridge';

/**
 * Tool calls from Python to the client (docs/tools.md), the worker's side: the bridge each
 * execution with tools gets. Its FleetStore and configuration come from the worker module.
 */
@Module({ providers: [ToolBridge], exports: [ToolBridge] })
export class ToolsModule {}
