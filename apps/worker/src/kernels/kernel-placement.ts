import type { KernelHandle } from '@kernelfleet/kernel';
import type { SessionRef } from '@kernelfleet/store';
import type { SessionFolders } from './session-folders';

const ignoreOutput = { onStream: () => undefined, onDisplay: () => undefined };
/** Prints the kernel's uid (each kernel runs as a uid of its own in the sandbox). */
const UID_CELL = "print(__import__('os').getuid())";

/**
 * Where a session's kernel works: its folder `<tenant>/<session>` under the Jupyter server's
 * root, and, when kernels run as users of their own (kernel-sandbox.ts), which uid owns it. A
 * kernel started elsewhere (the pool's, or any kernel with a user of its own) is moved in by one
 * setup cell after the worker has handed the folder to the kernel's uid.
 */
export class KernelPlacement {
  private readonly uids = new WeakMap<KernelHandle, number>();

  constructor(
    private readonly folders: SessionFolders,
    private readonly log: { warn(message: string): void },
  ) {}

  /** The session's folder relative to the server's root (the cwd a kernel started for it gets). */
  workingDir(ref: SessionRef): string {
    return this.folders.relative(ref);
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
   * Moves a kernel started in the server's root into the session's folder, the one a kernel
   * started for the session would get as its cwd, by a setup cell that is sent and not waited
   * for: a kernel runs its cells in the order they were sent, so the cell sent next (the user's)
   * runs in the folder, and the setup costs no round trip of its own (a new session's first result
   * 7 ms sooner, docs/benchmarks.md). A kernel that cannot move there exits, so no cell meant for
   * the folder ever runs elsewhere: the execution then finds its kernel dead.
   *
   * @returns false when the folder could not be made ready (nothing was sent).
   */
  async moveInto(handle: KernelHandle, ref: SessionRef): Promise<boolean> {
    let dir = this.workingDir(ref);
    try {
      const uid = this.uids.get(handle);
      if (uid !== undefined) dir = await this.folders.prepare(ref, uid);
    } catch (error) {
      this.log.warn(`the folder of kernel ${handle.id} could not be made ready: ${(error as Error).message ?? error}`);
      return false;
    }
    const os = "__import__('os')";
    const code = `try:\n    ${os}.makedirs(${JSON.stringify(dir)}, exist_ok=True); ${os}.chdir(${JSON.stringify(dir)})\nexcept BaseException:\n    ${os}._exit(1)`;
    const failed = (why: string) => this.log.warn(`kernel ${handle.id} could not move into ${dir}: ${why}`);
    void handle.execute(code, ignoreOutput).then(
      (outcome) => {
        if (outcome.status !== 'ok') failed(outcome.status);
      },
      (error: unknown) => failed(String((error as Error).message ?? error)),
    );
    return true;
  }
}
