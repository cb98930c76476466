import type { KernelInfo } from '@kernelfleet/contracts';
import type { KernelHandle } from '@kernelfleet/kernel';
import type { SessionRef } from '@kernelfleet/store';

/** A session kernel this worker holds, as SessionKernels keeps it. */
export interface SessionEntry {
  ref: SessionRef;
  /** Undefined once the kernel was lost (died, killed, failed to be replaced): the next acquire starts one. */
  handle?: KernelHandle;
  generation: number;
  dead: boolean;
  /** An execution of the session holds the kernel (from `acquire` until `done`). */
  inUse: boolean;
  lastUsedAt: number;
  /** Aborted when the session is found no longer homed here with this generation: the kernel goes. */
  disposal: AbortController;
}

export interface AcquiredKernel {
  handle: KernelHandle;
  info: KernelInfo;
  /** Per-call kernels are shut down by the caller after the execution. */
  ephemeral: boolean;
  /**
   * Session kernels: aborted when the session was disposed (or taken from this worker) while the
   * kernel is held; the kernel is being shut down and the execution must end at once.
   */
  disposed?: AbortSignal;
}

/** Who found a session kernel whose session is no longer homed here (for logs and metrics). */
export type DisposalFinder = 'message' | 'reconcile' | 'acquire' | 'start';

/** The key of a session in SessionKernels' maps and locks. */
export const sessionKey = (ref: SessionRef) => `${ref.tenant}/${ref.sessionId}`;
