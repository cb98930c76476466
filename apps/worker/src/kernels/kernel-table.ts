import type { Logger } from '@nestjs/common';
import type { KernelHandle } from '@kernelfleet/kernel';
import type { SessionRef } from '@kernelfleet/store';
import { logFields } from '@kernelfleet/telemetry';
import type { KernelCapacity } from './kernel-capacity';
import { shutDownKernel } from './kernel-starter';
import { KeyedLock } from './keyed-lock';
import type { SessionFolders } from './session-folders';
import { sessionKey, type DisposalFinder, type SessionEntry } from './session-entry';

/**
 * The session kernels a worker holds, one entry per session, with the per-session lock that
 * every start, shutdown, cull, eviction and drop runs under, and the ways an entry leaves:
 * `retire` (its kernel shut down, its folder deleted, then its slot free) and `drop` (the same
 * for a session no longer homed here). SessionKernels and IdleKernels decide when.
 */
export class KernelTable {
  private readonly entries = new Map<string, SessionEntry>();
  private readonly locks = new KeyedLock();
  /** Slots of entries being retired that are not free yet (see `retire`). */
  private retiring = 0;
  /** Set once the worker drains or stops: nothing is started or taken any more. */
  closed = false;
  /** Session kernels shut down because their session was no longer homed here, by who found it. */
  readonly disposals: Record<DisposalFinder, number> = { message: 0, reconcile: 0, acquire: 0, start: 0 };

  constructor(
    readonly capacity: KernelCapacity,
    readonly folders: SessionFolders,
    private readonly logger: Logger,
  ) {}

  /** Session kernel slots taken (pool kernels excluded): the entries, and those still retiring. */
  get size(): number {
    return this.entries.size + this.retiring;
  }

  get(key: string): SessionEntry | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** A new entry; its slot was counted while the session was admitted (SessionKernels.acquire). */
  set(key: string, entry: SessionEntry): void {
    this.entries.set(key, entry);
  }

  values(): IterableIterator<SessionEntry> {
    return this.entries.values();
  }

  list(): [string, SessionEntry][] {
    return [...this.entries.entries()];
  }

  /** Every entry, taken out at once (the Jupyter server went away, or the worker stops); the caller frees the slots. */
  takeAll(): SessionEntry[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }

  /** Runs `work` after every earlier start, shutdown, cull, eviction or drop of the same session. */
  locked<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(key, work);
  }

  /**
   * Under the session's lock: the entry leaves, its kernel is shut down and its folder deleted;
   * `released` runs between the two (a cull writes the session's new state there). Only then a
   * new session may take the slot, unless `slotFreeAtOnce` (an eviction: the session was
   * released in Redis already, for the one waiting for its slot). Takes the entry out at once,
   * before its first await.
   */
  async retire(key: string, entry: SessionEntry, released?: () => Promise<unknown>, slotFreeAtOnce = false): Promise<void> {
    this.entries.delete(key);
    const holding = slotFreeAtOnce ? 0 : 1;
    this.retiring += holding;
    try {
      await this.shutDown(entry);
      await released?.();
      await this.removeFolder(entry.ref);
    } finally {
      this.retiring -= holding;
      this.updateCapacity();
    }
  }

  /**
   * Under the session's lock: the entry's session is no longer homed here with its generation.
   * The execution running on it (if any) is told first, then the entry is retired. Redis is left
   * as it is: whoever took the session wrote its state and home.
   */
  async drop(key: string, entry: SessionEntry, foundBy: DisposalFinder, slotFreeAtOnce = false): Promise<void> {
    entry.disposal.abort();
    this.disposals[foundBy] += 1;
    this.logger.log(
      logFields(`shutting down kernel ${entry.handle?.id ?? '(none)'} of session ${key}: no longer homed here (found by ${foundBy})`, {
        tenant: entry.ref.tenant,
        sessionId: entry.ref.sessionId,
        generation: entry.generation,
      }),
    );
    await this.retire(key, entry, undefined, slotFreeAtOnce);
  }

  /** The entry's kernel is shut down; the entry itself (the session's slot) stays unless removed. */
  async shutDown(entry: SessionEntry): Promise<void> {
    const handle = entry.handle;
    entry.handle = undefined;
    entry.dead = true;
    if (handle) await this.shutDownHandle(handle);
  }

  shutDownHandle(handle: KernelHandle): Promise<void> {
    return shutDownKernel(handle, this.logger);
  }

  /** The session has left this worker: its files go with its kernel (docs/files.md). */
  async removeFolder(ref: SessionRef): Promise<void> {
    if (!(await this.folders.remove(ref))) {
      this.logger.warn(logFields(`could not delete the folder of session ${sessionKey(ref)} (${this.folders.folderOf(ref)})`, { ...ref }));
    }
  }

  /** Pauses the shared queue while the session kernels (and those being admitted) fill capacity. */
  updateCapacity(): void {
    this.capacity.update(this.size, this.closed);
  }
}
