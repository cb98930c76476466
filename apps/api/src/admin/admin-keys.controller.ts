import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { AdminGuard } from '../auth/admin.guard';
import { AdminKeysService } from './admin-keys.service';

@Controller('admin/keys')
@UseGuards(AdminGuard)
export class AdminKeysController {
  constructor(private readonly keys: AdminKeysService) {}

  @Post()
  @HttpCode(201)
  create(@Body() body: unknown) {
    return this.keys.create(body);
  }

  @Get()
  list(@Query('tenant') tenant: string | undefined) {
    return this.keys.list(tenant);
  }

  @Delete(':keyId')
  @HttpCode(200)
  revoke(@Param('keyId') keyId: string) {
    return this.keys.revoke(keyId);
  }
}
