import { Controller, Delete, HttpCode, Param, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { Tenant } from '../auth/tenant.decorator';
import { OwnersService } from './owners.service';

@Controller('v1/owners')
@UseGuards(ApiKeyGuard)
export class OwnersController {
  constructor(private readonly owners: OwnersService) {}

  @Delete(':ownerId')
  @HttpCode(200)
  dispose(@Tenant() tenant: string, @Param('ownerId') ownerId: string) {
    return this.owners.dispose(tenant, ownerId);
  }
}
