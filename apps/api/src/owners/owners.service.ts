import { Injectable } from '@nestjs/common';
import type { OwnerDisposal } from '@kernelfleet/contracts';
import { FleetStore } from '@kernelfleet/store';
import { checkId } from '../executions/executions.service';
import { notFound } from '../problems/problem.exception';

@Injectable()
export class OwnersService {
  constructor(private readonly store: FleetStore) {}

  /**
   * Dispose by owner (SessionDisposal.disposeOwner): the sessions the owner alone held are
   * disposed, shared ones just lose it. 404 when the owner holds no session of this tenant.
   */
  async dispose(tenant: string, ownerId: string): Promise<OwnerDisposal> {
    checkId('ownerId', ownerId);
    const { disposed, detached } = await this.store.disposal.disposeOwner(tenant, ownerId);
    if (disposed.length === 0 && detached.length === 0) throw notFound(`owner ${ownerId}`);
    return { ownerId, disposed, detached };
  }
}
