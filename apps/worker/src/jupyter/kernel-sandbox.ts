import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { WorkerConfig } from '@kernelfleet/config';
import { findLauncherScript, type KernelSandboxSettings } from '@kernelfleet/kernel';

const PROBE_TIMEOUT_MS = 30_000;

export interface SandboxPlan {
  settings?: KernelSandboxSettings;
  /** Whether each kernel runs as a uid of its own (else as the worker's user). */
  kernelUsers: boolean;
  /** One line for the log: what the kernels get, and why not more. */
  summary: string;
  /** Why kernels do not run as users of their own (empty when they do). */
  reason: string;
}

/**
 * Decides the sandbox of the kernels this worker's own Jupyter server starts (see
 * python/kernelfleet_sandbox.py). Users of their own need root, and an interpreter and kernel
 * folder those users can reach: a probe imports what a kernel imports first as a uid just outside the
 * kernels' range, in the kernels' root folder. Otherwise the limits alone apply.
 */
export function planSandbox(config: WorkerConfig): SandboxPlan {
  const { sandbox, jupyter } = config;
  if (sandbox.mode === 'off') return { kernelUsers: false, summary: 'kernel sandbox off (KERNEL_SANDBOX=off)', reason: 'KERNEL_SANDBOX=off' };
  const locks = join(sandbox.dir, 'locks');
  const homes = join(sandbox.dir, 'home');
  let kernelUsers = false;
  let why = 'KERNEL_SANDBOX=limits';
  if (sandbox.mode === 'auto') {
    if (process.getuid?.() !== 0) {
      why = 'the worker is not root';
    } else {
      mkdirSync(locks, { recursive: true, mode: 0o700 });
      mkdirSync(homes, { recursive: true, mode: 0o711 });
      for (const [dir, mode] of [[sandbox.dir, 0o711], [locks, 0o700], [homes, 0o711], [jupyter.rootDir, 0o711]] as const) {
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, mode);
      }
      const failure = probeKernelUser(jupyter.python, jupyter.rootDir, sandbox.uidBase + sandbox.uidCount);
      kernelUsers = failure === undefined;
      why = failure ?? '';
    }
  }
  const { limits } = sandbox;
  const settings: KernelSandboxSettings = {
    switchUser: kernelUsers,
    uidBase: sandbox.uidBase,
    uidCount: sandbox.uidCount,
    lockDir: locks,
    runDir: homes,
    keepPaths: [jupyter.rootDir],
    limits,
  };
  const mib = (bytes: number) => (bytes ? `${Math.round(bytes / 1_048_576)} MiB` : 'unlimited');
  const limitText =
    `address space ${mib(limits.addressSpaceBytes)}, CPU ${limits.cpuSeconds || 'unlimited'} s, ` +
    `file size ${mib(limits.fileSizeBytes)}, open files ${limits.openFiles || 'unlimited'}` +
    (kernelUsers ? `, processes ${limits.processes || 'unlimited'}` : '');
  const summary = kernelUsers
    ? `kernels run as uids ${sandbox.uidBase}..${sandbox.uidBase + sandbox.uidCount - 1}, each its own; limits: ${limitText}`
    : `kernels run as the worker's user (${why}); limits: ${limitText}`;
  return { settings, kernelUsers, summary, reason: why };
}

/** Undefined when `uid` can start a kernel's interpreter in `rootDir`; else why not. */
function probeKernelUser(python: string, rootDir: string, uid: number): string | undefined {
  const kernelSite = join(dirname(findLauncherScript()), 'kernel_site');
  const probe = spawnSync(python, ['-c', 'import ipykernel, kernelfleet_outstream'], {
    uid,
    gid: uid,
    cwd: rootDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', PYTHONPATH: kernelSite },
    timeout: PROBE_TIMEOUT_MS,
    encoding: 'utf8',
  });
  if (probe.status === 0) return undefined;
  const detail = (probe.error?.message ?? probe.stderr.trim().split('\n').pop() ?? `exit ${probe.status}`).slice(0, 200);
  return `a kernel user cannot run ${python} in ${rootDir}: ${detail}`;
}
