import type { WorkerConfig } from '@kernelfleet/config';
import type { KernelHandle, StartKernelOptions } from '@kernelfleet/kernel';
import type { FleetStore, JobConsumer, KernelState, SessionInfo, SessionRef } from '@kernelfleet/store';
import type { JupyterService } from '../jupyter/jupyter.service';
import { FakeKernel } from './fake-kernel.spec-helper';
import { SessionKernels } from './session-kernels';

export const ref = (sessionId: string): SessionRef => ({ tenant: 'acme', sessionId });
export const key = (r: SessionRef) => `${r.tenant}/${r.sessionId}`;

/** In-memory session bookkeeping with the semantics of SessionRepository. */
export class FakeSessions {
  readonly info = new Map<string, { generation: number; state: KernelState; home: string | null }>();
  readonly releases: [string, KernelState][] = [];
  async get(r: SessionRef): Promise<SessionInfo | null> {
    const i = this.info.get(key(r));
    return i ? { sessionId: r.sessionId, workerId: i.home, kernel: { generation: i.generation, state: i.state }, files: i.home ? 'kept' : 'none', pending: 0, lastActivityAt: 1 } : null;
  }
  async beginGeneration(r: SessionRef, workerId: string): Promise<number> {
    const i = this.info.get(key(r)) ?? { generation: 0, state: 'none' as KernelState, home: null };
    i.generation += 1;
    i.state = 'starting';
    i.home = workerId;
    this.info.set(key(r), i);
    return i.generation;
  }
  async setKernelState(r: SessionRef, workerId: string, generation: number, state: KernelState): Promise<boolean> {
    const i = this.info.get(key(r));
    if (!i || i.home !== workerId || i.generation !== generation) return false;
    i.state = state;
    return true;
  }
  async homesOf(refs: SessionRef[]): Promise<{ home: string | null; generation: number }[]> {
    return refs.map((r) => ({ home: this.info.get(key(r))?.home ?? null, generation: this.info.get(key(r))?.generation ?? 0 }));
  }
  /** What SessionDisposal writes (dispose-2.lua): no home, state `none`. */
  unhome(r: SessionRef): void {
    const i = this.info.get(key(r));
    if (i) Object.assign(i, { home: null, state: 'none' });
  }
  async pendingStateLoss(): Promise<null> {
    return null;
  }
  async setStateLossPending(): Promise<void> {}
  /** Every kernel in these tests ran code before it went away. */
  async latestKernelWasUsed(r: SessionRef): Promise<boolean> {
    return (this.info.get(key(r))?.generation ?? 0) > 0;
  }
  async isHeldBy(r: SessionRef, workerId: string, generation: number): Promise<boolean> {
    const i = this.info.get(key(r));
    return i?.home === workerId && i.generation === generation;
  }
  async release(r: SessionRef, workerId: string, state: KernelState): Promise<boolean> {
    this.releases.push([key(r), state]);
    const i = this.info.get(key(r));
    if (!i || i.home !== workerId) return false;
    i.home = null;
    i.state = state;
    return true;
  }
}

/** A SessionKernels on fakes: sessions in memory, kernels that record what was done to them. */
export interface SessionKernelsBench {
  kernels: SessionKernels;
  sessions: FakeSessions;
  /** What the kernels asked of the job consumer's shared queue. */
  setSharedPaused: jest.Mock;
  /** Every kernel started, in order. */
  starts: FakeKernel[];
  /** The Jupyter server's restart listeners. */
  restartListeners: (() => void)[];
}

export function makeSessionKernels(
  overrides: Partial<WorkerConfig['kernels']> = {},
  startKernel?: (opts: StartKernelOptions) => Promise<KernelHandle>,
  jupyterUrl?: string,
): SessionKernelsBench {
  const sessions = new FakeSessions();
  const setSharedPaused = jest.fn();
  const starts: FakeKernel[] = [];
  const restartListeners: (() => void)[] = [];
  const config = {
    workerId: 'w1',
    // No folder is ever touched: no such interpreter, no such root, and not the worker's own.
    jupyter: { url: jupyterUrl, python: '/nonexistent/python', rootDir: '/nonexistent/kernels', rootOwned: false },
    kernels: { interruptGraceMs: 5_000, startMaxMs: 5_000, startsAtOnce: 4, maxKernels: 2, poolSize: 1, idleMs: 1_000, ...overrides },
  } as WorkerConfig;
  const jupyter = {
    client: {
      startKernel:
        startKernel ??
        (async (opts: StartKernelOptions) => {
          const kernel = new FakeKernel(opts.cwd);
          starts.push(kernel);
          return kernel;
        }),
    },
    onRestart: (listener: () => void) => restartListeners.push(listener),
  } as unknown as JupyterService;
  const store = { sessions, registry: { liveLeases: async () => [] } } as unknown as FleetStore;
  const kernels = new SessionKernels(config, jupyter, store, { setSharedPaused } as unknown as JobConsumer);
  return { kernels, sessions, setSharedPaused, starts, restartListeners };
}
