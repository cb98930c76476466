import { Injectable } from '@nestjs/common';
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
    return { sessionId, cancelled: await this.cancelQueued(ref) };
  }

  /** Cancels what is queued and has the home worker shut the kernel down (after a running one). */
  async dispose(tenant: string, sessionId: string): Promise<{ sessionId: string; cancelled: number }> {
    const ref = this.ref(tenant, sessionId);
    if (!(await this.store.sessions.get(ref))) throw notFound(`session ${sessionId}`);
    return { sessionId, cancelled: await this.shutDown(ref) };
  }

  /**
   * What disposing a session does, for `DELETE /v1/sessions/{id}` and dispose by owner: queued
   * executions cancelled, owners cleared, the home worker told to shut the kernel down (after
   * a running execution). Answers how many executions were cancelled.
   */
  async shutDown(ref: SessionRef): Promise<number> {
    const cancelled = await this.cancelQueued(ref);
    await this.store.sessions.clearOwners(ref);
    const home = await this.store.sessions.homeOf(ref);
    if (home) await this.store.registry.sendControl(home, { op: 'dispose', tenant: ref.tenant, sessionId: ref.sessionId });
    return cancelled;
  }

  private async cancelQueued(ref: SessionRef): Promise<number> {
    let cancelled = 0;
    for (const execution of await this.store.executions.laneOf(ref)) {
      if ((await this.store.lanes.endQueued(execution, 'cancelled')).kind === 'finished') cancelled += 1;
    }
    return cancelled;
  }

  private ref(tenant: string, sessionId: string): SessionRef {
    checkId('sessionId', sessionId);
    return { tenant, sessionId };
  }
}
