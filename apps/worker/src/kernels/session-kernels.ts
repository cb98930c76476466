import { Inject, Injectable, Logger } from '@nestjs/common';
import type { KernelInfo, StateLostReason } from '@kernelfleet/contracts';
import type { WorkerConfig } from '@kernelfleet/config';
import type { KernelHandle } from '@kernelfleet/kernel';
import { FleetStore, JobConsumer, stateLostReasonOf, type SessionHolder, type SessionRef } from '@kernelfleet/store';
import { JupyterService } from '../jupyter/jupyter.service';
import { WORKER_CONFIG } from '../tokens';
import { IdleKernels } from './idle-kernels';
import { KernelCapacity } from './kernel-capacity';
import type { KernelLeaseFields } from './kernel-eviction';
import { KernelPlacement } from './kernel-placement';
import { KernelStarter } from './kernel-starter';
import { KernelTable } from './kernel-table';
import { PeriodicTask } from './periodic-task';
import { SessionFolders } from './session-folders';
import { sessionKey, type AcquiredKernel, type DisposalFinder, type SessionEntry } from './session-entry';

export type { AcquiredKernel, DisposalFinder } from './session-entry';

/**
 * `startTimeoutMs`: how long a kernel start may take; `notAfter`: the execution's deadline (epoch
 * ms), which bounds a start's wait for its turn too (KernelStarter.kernelFor). `reset` and
 * `holder`: see SessionKernels.acquire.
 */
export interface AcquireOptions {
  reset: boolean;
  startTimeoutMs: number;
  notAfter?: number;
  holder?: SessionHolder;
}

/**
 * The kernels this worker holds, one per session homed here; new ones come from a
 * {@link KernelStarter} (its warm pool, else a fresh start). Executions of a session never overlap
 * (the lane guarantees it); starts, shutdowns and culls of one session are serialised here.
 *
 * The entries, their locks and how one leaves: {@link KernelTable}. Capacity:
 * {@link KernelCapacity}. Idle kernels, culled or evicted for a new session at a full fleet:
 * {@link IdleKernels}.
 *
 * Redis decides who holds a session: a kernel serves its session only while the session is homed
 * on this worker with that kernel's generation. A disposal (or a reaper, or a replacement
 * elsewhere) changes that in Redis; this worker finds out from a control message (fast path),
 * from its reconcile every `reconcileMs` (one batched read for all its kernels), or at the
 * session's next acquire, and then kills the kernel at once and ends the execution running on it.
 */
@Injectable()
export class SessionKernels {
  private readonly logger = new Logger(SessionKernels.name);
  private readonly kernels: KernelTable;
  private readonly idle: IdleKernels;
  private readonly starter: KernelStarter;
  private readonly reconciler: PeriodicTask;
  private readonly placement: KernelPlacement;
  /** Where the sessions' folders are on this worker. */
  readonly folders: SessionFolders;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly jupyter: JupyterService,
    private readonly store: FleetStore,
    consumer: JobConsumer,
  ) {
    this.folders = new SessionFolders(config.jupyter.rootDir, config.jupyter.python, config.jupyter.rootOwned, config.workerId);
    this.placement = new KernelPlacement(this.folders, { warn: (m) => this.logger.warn(m) });
    this.starter = new KernelStarter(config, jupyter, this.placement, this.logger);
    const capacity = new KernelCapacity(config.kernels.maxKernels, (paused) => consumer.setSharedPaused(paused), (m) => this.logger.log(m));
    this.kernels = new KernelTable(capacity, this.folders, this.logger);
    this.idle = new IdleKernels(config, store, this.kernels, this.logger);
    const log = { warn: (m: string) => this.logger.warn(m) };
    this.reconciler = new PeriodicTask('reconciling kernels with Redis', config.kernels.reconcileMs, () => this.reconcileIfConnected(), log);
    jupyter.onRestart(() => void this.forgetAll().catch((e: unknown) => this.logger.error(`forgetting kernels failed: ${e}`)));
  }

  /** Session kernels held (pool kernels excluded). */
  get size(): number {
    return this.kernels.size;
  }

  /** Pool kernels ready to be taken. */
  get pooled(): number {
    return this.starter.pooled;
  }

  /** Session kernels alive now (a session whose kernel died or was killed holds its slot without one). */
  get liveSessionKernels(): number {
    let live = 0;
    for (const entry of this.kernels.values()) if (entry.handle && !entry.dead) live += 1;
    return live;
  }

  /** Kernels being started right now. */
  get starting(): number {
    return this.starter.starting;
  }

  /** Session kernels culled since start. */
  get culled(): number {
    return this.idle.culled;
  }

  /** Session kernels evicted for other sessions since start. */
  get evicted(): number {
    return this.idle.evicted;
  }

  /** What the worker's lease says of its session kernels (see KernelEviction). */
  leaseFields(now = Date.now()): KernelLeaseFields {
    return this.idle.leaseFields(now);
  }

  /** Session kernels shut down since start because their session was no longer homed here. */
  get disposed(): Readonly<Record<DisposalFinder, number>> {
    return this.kernels.disposals;
  }

  /** After the Jupyter server is up: fill the warm pool in the background, start culling and reconciling. */
  start(): void {
    this.starter.start();
    this.idle.start();
    this.reconciler.start();
  }

  /** Whether the session has a kernel (or a slot) on this worker. */
  holds(ref: SessionRef): boolean {
    return this.kernels.has(sessionKey(ref));
  }

  /**
   * The generation of the session's kernel when this worker holds it alive, so the next
   * execution's claim can mark its code as sent at once (ExecutionRepository.claim); `acquire`
   * hands out that very kernel unless it dies or goes meanwhile, and then a new one is marked.
   */
  warmGeneration(ref: SessionRef): number | undefined {
    const entry = this.kernels.get(sessionKey(ref));
    return entry?.handle && !entry.dead ? entry.generation : undefined;
  }

  /** Whether the session kernels held and being admitted fill this worker. */
  get isFull(): boolean {
    return this.kernels.capacity.isFull(this.kernels.size);
  }

  /** Frees a slot for a session new to this worker when it is full (IdleKernels.makeRoom). */
  makeRoom(ref: SessionRef): Promise<boolean> {
    return this.idle.makeRoom(ref);
  }

  /**
   * The session's kernel: reused, or started when it has none, was reset, or died. `holder`:
   * the session's home and generation as the execution's claim read them; when they name this
   * worker and the held kernel, Redis is not asked again (generations only grow, and a session
   * taken away since the claim stops the code at code-sent-2.lua).
   */
  async acquire(ref: SessionRef, opts: AcquireOptions): Promise<AcquiredKernel> {
    const key = sessionKey(ref);
    // A session not held yet takes a slot from now (its kernel may take a while to start).
    const admitting = !this.kernels.has(key);
    if (admitting) this.kernels.capacity.admission(1, this.kernels.size);
    try {
      return await this.kernels.locked(key, () => this.acquireLocked(key, ref, opts));
    } finally {
      if (admitting) this.kernels.capacity.admission(-1, this.kernels.size);
    }
  }

  /** Whether Redis still homes the session here with kernel `generation` (see `acquire`). */
  private async stillHeld(ref: SessionRef, generation: number, seen?: SessionHolder): Promise<boolean> {
    if (seen && seen.home === this.config.workerId && seen.generation === generation) return true;
    return this.store.sessions.isHeldBy(ref, this.config.workerId, generation);
  }

  private async acquireLocked(key: string, ref: SessionRef, opts: AcquireOptions): Promise<AcquiredKernel> {
    let entry = this.kernels.get(key);
    if (entry && !(await this.stillHeld(ref, entry.generation, opts.holder))) {
      // Disposed, reaped while this worker could not renew its lease, or replaced elsewhere (and
      // not yet reconciled): this kernel must not serve the session any more, and the state its
      // entry stands for is not the session's. Redis alone says whether state was lost.
      await this.kernels.drop(key, entry, 'acquire');
      entry = undefined;
    }
    if (entry?.handle && !entry.dead && !opts.reset) {
      // A per-call execution of the session had the folder handed to its own kernel's uid.
      await this.placement.reclaim(entry.handle, ref);
      entry.inUse = true;
      entry.lastUsedAt = Date.now();
      return { handle: entry.handle, ephemeral: false, disposed: entry.disposal.signal, info: this.info(entry.generation, null, false) };
    }
    // A session the claim saw with no kernel ever (generation 0) has no state to lose: Redis is
    // not asked (the session's lane lets one execution at a time this far).
    const neverHadKernel = !entry && opts.holder?.generation === 0;
    const before = neverHadKernel ? null : await this.store.sessions.get(ref);
    // State is lost when the session had a kernel that nobody asked to go away: a disposal sets
    // the state `none` (and this worker's stale entry is gone by now, see above).
    const hadKernel =
      (entry !== undefined || (before !== null && before.kernel.generation > 0 && before.kernel.state !== 'none')) &&
      (await this.store.sessions.latestKernelWasUsed(ref));
    const untold = before !== null && before.kernel.state !== 'none' ? await this.store.sessions.pendingStateLoss(ref) : null;
    // An entry of ours that is still here lost its kernel (died or killed); else Redis says why.
    const lostNow: StateLostReason | null = hadKernel ? (entry ? 'died' : (stateLostReasonOf(before?.kernel.state ?? 'lost') ?? 'lost')) : null;
    const reason = opts.reset ? null : (untold ?? lostNow);
    if (reason !== untold) await this.store.sessions.setStateLossPending(ref, reason);
    if (entry) {
      // The old kernel goes (reset, or dead); the session keeps its slot here meanwhile.
      entry.inUse = true;
      await this.kernels.shutDown(entry);
    }
    const handle = await this.starter.kernelFor(ref, opts.startTimeoutMs, opts.notAfter);
    let generation: number;
    try {
      generation = await this.store.sessions.beginGeneration(ref, this.config.workerId);
    } catch (error) {
      void this.kernels.shutDownHandle(handle);
      throw error;
    }
    const next: SessionEntry = { ref, handle, generation, dead: false, inUse: true, lastUsedAt: Date.now(), disposal: new AbortController() };
    void handle.dead.then(() => (next.dead = true));
    this.kernels.set(key, next); // counted already while admitting (see acquire)
    return { handle, ephemeral: false, disposed: next.disposal.signal, info: this.info(generation, reason, true) };
  }

  /** The execution that acquired the session's kernel has ended: the idle clock starts now. */
  done(ref: SessionRef): void {
    const entry = this.kernels.get(sessionKey(ref));
    if (!entry?.inUse) return;
    entry.inUse = false;
    entry.lastUsedAt = Date.now();
  }

  /** The uid a kernel runs as, when kernels run as users of their own (else undefined). */
  uidOf(handle: KernelHandle): number | undefined {
    return this.placement.uidOf(handle);
  }

  /** A fresh kernel for one per-call execution; never registered with the session. */
  async acquireEphemeral(ref: SessionRef, startTimeoutMs: number, notAfter?: number): Promise<AcquiredKernel> {
    const handle = await this.starter.kernelFor(ref, startTimeoutMs, notAfter);
    return { handle, ephemeral: true, info: this.info(1, null, true) };
  }

  /** A per-call kernel's execution is over: the kernel goes. */
  async releaseEphemeral(handle: KernelHandle): Promise<void> {
    await this.kernels.shutDownHandle(handle);
  }

  /**
   * The session's kernel `generation` was killed or died: forget it; the next execution gets a
   * new one. A kernel already gone (disposed, replaced) is left as it is.
   */
  async lose(ref: SessionRef, generation: number): Promise<void> {
    const key = sessionKey(ref);
    await this.kernels.locked(key, async () => {
      const entry = this.kernels.get(key);
      if (!entry || entry.generation !== generation) return;
      await this.kernels.shutDown(entry);
      await this.store.sessions.setKernelState(ref, this.config.workerId, generation, 'dead');
    });
  }

  /**
   * The session was disposed while its kernel `generation` started here (the start homed the
   * session again): the kernel goes, and the session is released with state `none`, as the
   * disposal left it. A kernel already gone or replaced is left as it is.
   */
  async discard(ref: SessionRef, generation: number): Promise<void> {
    const key = sessionKey(ref);
    await this.kernels.locked(key, async () => {
      const entry = this.kernels.get(key);
      if (!entry || entry.generation !== generation) return;
      await this.kernels.drop(key, entry, 'start');
      await this.store.sessions.release(ref, this.config.workerId, 'none');
    });
  }

  /**
   * Checks session kernels against Redis (all of them, or the one of `only`): each whose session
   * is no longer homed on this worker with that kernel's generation is shut down at once, after
   * the execution running on it is told to end (see AcquiredKernel.disposed). The read is one
   * HMGET per kernel, all sent together (one round trip); the shutdown runs under the session's
   * lock, so it never races a start. Answers how many kernels went.
   */
  async reconcile(only?: SessionRef, foundBy: DisposalFinder = 'reconcile'): Promise<number> {
    if (this.kernels.closed) return 0;
    const entries = only
      ? [[sessionKey(only), this.kernels.get(sessionKey(only))] as const].filter((e): e is [string, SessionEntry] => e[1] !== undefined)
      : this.kernels.list();
    if (entries.length === 0) return 0;
    const homes = await this.store.sessions.homesOf(entries.map(([, entry]) => entry.ref));
    // A kernel's generation is never homed here again once it was not (a new kernel is a new
    // generation), so reading before taking the lock is safe; under it, only an entry replaced
    // meanwhile is skipped.
    const gone = entries.filter(([, entry], i) => homes[i].home !== this.config.workerId || homes[i].generation !== entry.generation);
    const dropped = await Promise.all(
      gone.map(([key, entry]) =>
        this.kernels.locked(key, async () => {
          if (this.kernels.closed || this.kernels.get(key) !== entry) return false;
          await this.kernels.drop(key, entry, foundBy);
          return true;
        }),
      ),
    );
    return dropped.filter(Boolean).length;
  }

  /** Culls session kernels unused for `idleMs` (IdleKernels.cull); answers how many went. */
  cullIdle(now = Date.now()): Promise<number> {
    return this.idle.cull(now);
  }

  /**
   * The Jupyter server went away (and was restarted): every kernel it held is gone. Handles are
   * closed without a REST shutdown, each session is released as `lost` (its next execution says
   * so), and the pool refills from the new server.
   */
  async forgetAll(): Promise<void> {
    this.starter.serverRestarted();
    const entries = this.kernels.takeAll();
    this.kernels.updateCapacity();
    for (const entry of entries) {
      entry.handle?.dispose();
      entry.handle = undefined;
      entry.dead = true;
    }
    if (entries.length) this.logger.warn(`Jupyter server restarted: ${entries.length} session kernel(s) lost`);
    await Promise.all(
      entries.map((entry) =>
        this.store.sessions
          .release(entry.ref, this.config.workerId, 'lost')
          .then(() => this.kernels.removeFolder(entry.ref))
          .catch((error: unknown) => this.logger.warn(`releasing ${sessionKey(entry.ref)} failed: ${error}`)),
      ),
    );
  }

  async disposeAll(): Promise<void> {
    this.kernels.closed = true;
    this.idle.stop();
    this.reconciler.stop();
    const entries = this.kernels.takeAll();
    // Drained or stopping: the sessions are handed back, and their folders are lost with them.
    await Promise.all([this.starter.close(), ...entries.map(async (entry) => {
      await this.kernels.shutDown(entry);
      await this.kernels.removeFolder(entry.ref);
    })]);
    await this.folders.removeAll();
  }

  /** The periodic reconcile: skipped while Redis is away (its outage is not a disposal). */
  private async reconcileIfConnected(): Promise<void> {
    if (this.store.connected) await this.reconcile();
  }

  private info(generation: number, stateLost: StateLostReason | null, restarted: boolean): KernelInfo {
    const info: KernelInfo = { workerId: this.config.workerId, generation, stateLost: stateLost !== null, restarted };
    if (stateLost) info.stateLostReason = stateLost;
    return info;
  }
}
