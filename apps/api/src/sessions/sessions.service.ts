import { Injectable } from '@nestjs/common';
import type { SessionsDisposal } from '@kernelfleet/contracts';
import { FleetStore, type SessionInfo, type SessionRef } from '@kernelfleet/store';
import { checkId } from '../executions/executions.service';
import { notFound } from '../problems/problem.exception';

export interface SessionView extends SessionInfo {
  owners: string[];
}

@Injectable()
export class SessionsService {
  constructor(private readonly store: FleetStore) {}

  async get(tenant: string, sessionId: string): Promise<SessionView> {
    const ref = this.ref(tenant, sessionId);
    const [info, owners] = await Promise.all([this.store.sessions.get(ref), this.store.sessions.owners(ref)]);
    if (!info) throw notFound(`session ${sessionId}`);
    return { ...info, owners };
  }

  /** Cancels every queued execution of the session; a running one is left to finish. */
  async cancelPending(tenant: string, sessionId: string): Promise<{ sessionId: string; cancelled: number }> {
    const ref = this.ref(tenant, sessionId);
    if (!(await this.store.sessions.get(ref))) throw notFound(`session ${sessionId}`);
    return { sessionId, cancelled: await this.store.disposal.cancelQueued(ref) };
  }

  /**
   * Disposes the session (SessionDisposal): queued executions cancelled, owners cleared, the
   * kernel shut down by its worker, a running execution on it ended `cancelled`.
   */
  async dispose(tenant: string, sessionId: string): Promise<{ sessionId: string; cancelled: number }> {
    const ref = this.ref(tenant, sessionId);
    if (!(await this.store.sessions.get(ref))) throw notFound(`session ${sessionId}`);
    const { cancelled } = await this.store.disposal.dispose(ref);
    return { sessionId, cancelled };
  }

  /** `DELETE /v1/sessions`: every session of the tenant with a kernel or pending executions. */
  async disposeAll(tenant: string): Promise<SessionsDisposal> {
    return { disposed: await this.store.disposal.disposeAll(tenant) };
  }

  private ref(tenant: string, sessionId: string): SessionRef {
    checkId('sessionId', sessionId);
    return { tenant, sessionId };
  }
}
