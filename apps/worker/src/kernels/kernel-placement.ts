import type { KernelHandle } from '@kernelfleet/kernel';
import type { SessionRef } from '@kernelfleet/store';
import { shutDownKernel } from './kernel-starter';
import type { SessionFolders } from './session-folders';

const ignoreOutput = { onStream: () => undefined, onDisplay: () => undefined };
/** Prints the kernel's uid (each kernel runs as a uid of its own in the sandbox). */
const UID_CELL = "print(__import__('os').getuid())";

/**
 * Where a session's kernel works: its folder `<tenant>/<session>` under the Jupyter server's
 * root, and, when kernels run as users of their own (kernel-sandbox.ts), which uid owns it. A
 * kernel started before it has a session (the pool's, or any kernel with a user of its own)
 * starts in a staging folder of its own (`startStaged`); given to a new session, that folder
 * becomes the session's by a rename and the kernel runs no setup cell. A kernel that cannot be
 * settled so (the session has a folder already) moves in by one setup cell.
 */
export class KernelPlacement {
  private readonly uids = new WeakMap<KernelHandle, number>();
  /** Kernels still in their staging folder (relative to the root). */
  private readonly staged = new WeakMap<KernelHandle, string>();

  constructor(
    private readonly folders: SessionFolders,
    private readonly log: { warn(message: string): void },
  ) {}

  /** The session's folder relative to the server's root (the cwd a kernel started for it gets). */
  workingDir(ref: SessionRef): string {
    return this.folders.relative(ref);
  }

  /**
   * A kernel started by `start` in a new staging folder, which it owns once started: with
   * `learnUid` (kernels run as users of their own) the worker asks for its uid and hands it the
   * folder. A kernel that fails on the way is shut down, and its folder goes.
   */
  async startStaged(start: (cwd: string) => Promise<KernelHandle>, learnUid: boolean): Promise<KernelHandle> {
    const staging = this.folders.newStaging();
    let handle: KernelHandle | undefined;
    try {
      handle = await start(staging);
      if (learnUid) {
        await this.learnUid(handle);
        await this.folders.handStaging(staging, this.uids.get(handle)!);
      }
      this.staged.set(handle, staging);
      return handle;
    } catch (error) {
      if (handle) void shutDownKernel(handle, this.log);
      this.removeStaging(staging);
      throw error;
    }
  }

  /** A kernel that got no session is being shut down: its staging folder goes with it. */
  release(handle: KernelHandle): void {
    const staging = this.staged.get(handle);
    if (staging === undefined) return;
    this.staged.delete(handle);
    this.removeStaging(staging);
  }

  /**
   * Asks a kernel for its uid (one warm round trip) and remembers it. Only stdout counts, and
   * its last line: a fresh kernel may still print start-up warnings.
   */
  async learnUid(handle: KernelHandle): Promise<void> {
    let printed = '';
    const outcome = await handle.execute(UID_CELL, {
      onStream: (name, text) => {
        if (name === 'stdout') printed += text;
      },
      onDisplay: () => undefined,
    });
    const uid = Number(printed.trim().split('\n').pop());
    if (outcome.status !== 'ok' || !Number.isInteger(uid)) {
      throw new Error(`kernel ${handle.id} did not tell its uid (${outcome.status}: ${JSON.stringify(printed.slice(0, 200))})`);
    }
    this.uids.set(handle, uid);
  }

  /** The uid a kernel runs as, when it runs as a user of its own. */
  uidOf(handle: KernelHandle): number | undefined {
    return this.uids.get(handle);
  }

  /** The folder goes back to the session's kernel (a per-call execution may have had it). */
  async reclaim(handle: KernelHandle, ref: SessionRef): Promise<void> {
    const uid = this.uids.get(handle);
    if (uid !== undefined) await this.folders.prepare(ref, uid);
  }

  /**
   * Puts a kernel in the session's folder. A staged kernel for a session with no folder yet is
   * settled by renaming its folder (SessionFolders.settle): nothing is sent to the kernel (a new
   * session's first result 5 ms sooner, docs/benchmarks.md). Otherwise a setup cell moves it,
   * sent and not waited for: a kernel runs its cells in the order they were sent, so the cell
   * sent next (the user's) runs in the folder. A kernel that cannot move there exits, so no cell
   * meant for the folder ever runs elsewhere: the execution then finds its kernel dead.
   *
   * @returns false when the folder could not be made ready (nothing was sent).
   */
  async moveInto(handle: KernelHandle, ref: SessionRef): Promise<boolean> {
    const uid = this.uids.get(handle);
    const staging = this.staged.get(handle);
    this.staged.delete(handle);
    if (staging !== undefined && this.folders.settle(staging, ref, uid !== undefined)) return true;
    // Relative to where the kernel is, as the kernel sees its folders (its server may see the
    // root at another path than the worker does); absolute once the worker prepared it.
    let dir = staging === undefined ? this.workingDir(ref) : this.folders.relativeFromStaging(ref);
    try {
      if (uid !== undefined) dir = await this.folders.prepare(ref, uid);
    } catch (error) {
      this.log.warn(`the folder of kernel ${handle.id} could not be made ready: ${(error as Error).message ?? error}`);
      if (staging !== undefined) this.staged.set(handle, staging);
      return false;
    }
    const os = "__import__('os')";
    const code = `try:\n    ${os}.makedirs(${JSON.stringify(dir)}, exist_ok=True); ${os}.chdir(${JSON.stringify(dir)})\nexcept BaseException:\n    ${os}._exit(1)`;
    const failed = (why: string) => this.log.warn(`kernel ${handle.id} could not move into ${dir}: ${why}`);
    const leaveStaging = () => {
      if (staging !== undefined) this.removeStaging(staging);
    };
    void handle.execute(code, ignoreOutput).then(
      (outcome) => {
        if (outcome.status !== 'ok') failed(outcome.status);
        leaveStaging();
      },
      (error: unknown) => {
        failed(String((error as Error).message ?? error));
        leaveStaging();
      },
    );
    return true;
  }

  private removeStaging(staging: string): void {
    void this.folders.removeStaging(staging).then(
      (gone) => gone || this.log.warn(`staging folder ${staging} could not be deleted`),
      (error: unknown) => this.log.warn(`staging folder ${staging} could not be deleted: ${error}`),
    );
  }
}
