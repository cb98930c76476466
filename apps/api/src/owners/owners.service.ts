import { Injectable } from '@nestjs/common';
import type { OwnerDisposal } from '@kernelfleet/contracts';
import { FleetStore } from '@kernelfleet/store';
import { checkId } from '../executions/executions.service';
import { notFound } from '../problems/problem.exception';

/** Sessions released at once while disposing an owner. */
const BATCH = 16;

@Injectable()
export class OwnersService {
  constructor(private readonly store: FleetStore) {}

  /**
   * Dispose by owner (seed §2.4): each session the owner alone held is shut down as
   * `DELETE /v1/sessions/{id}` does; a shared one just loses the owner. 404 when the owner
   * holds no session of this tenant.
   */
  async dispose(tenant: string, ownerId: string): Promise<OwnerDisposal> {
    checkId('ownerId', ownerId);
    const disposal: OwnerDisposal = { ownerId, disposed: [], detached: [] };
    const sessionIds = await this.store.sessions.indexedSessionsOf(tenant, ownerId);
    for (let i = 0; i < sessionIds.length; i += BATCH) {
      await Promise.all(
        sessionIds.slice(i, i + BATCH).map(async (sessionId) => {
          const ref = { tenant, sessionId };
          const released = await this.store.sessions.releaseOwner(ref, ownerId);
          if (released === 'last') {
            await this.store.disposal.dispose(ref);
            disposal.disposed.push(sessionId);
          } else if (released === 'detached') {
            disposal.detached.push(sessionId);
          }
        }),
      );
    }
    if (disposal.disposed.length === 0 && disposal.detached.length === 0) throw notFound(`owner ${ownerId}`);
    disposal.disposed.sort();
    disposal.detached.sort();
    return disposal;
  }
}
