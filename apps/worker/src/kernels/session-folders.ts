import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstatSync } from 'node:fs';
import { chmod, lchown, lstat, mkdir, opendir, readdir, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { findLauncherScript } from '@kernelfleet/kernel';
import type { SessionRef } from '@kernelfleet/store';

/** python/kernelfleet_files.py: every file operation inside a session's folder goes through it. */
export function fileHelperScript(): string {
  return join(dirname(findLauncherScript()), 'kernelfleet_files.py');
}

/**
 * The sessions' folders on this worker, under its own root (`KERNEL_ROOT_DIR`): where each is,
 * and their removal when the session leaves (culled, disposed, drained, its kernels lost) — its
 * files go with its kernel (docs/files.md).
 */
export class SessionFolders {
  constructor(
    readonly rootDir: string,
    private readonly python: string,
    /** Whether everything under the root is the worker's to delete (see WorkerConfig.jupyter). */
    private readonly rootOwned: boolean,
  ) {}

  /** `<tenant>/<session>` with `.`, `:` and `%` escaped, so ids like `..` stay one plain folder. */
  relative(ref: SessionRef): string {
    const escape = (id: string) => id.replace(/[.:%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    return `${escape(ref.tenant)}/${escape(ref.sessionId)}`;
  }

  /** The session's folder (absolute). */
  folderOf(ref: SessionRef): string {
    return join(this.rootDir, this.relative(ref));
  }

  /** The session's folder, ready for the kernel of `uid` (see prepareSessionFolder). */
  prepare(ref: SessionRef, uid: number): Promise<string> {
    return prepareSessionFolder(this.rootDir, this.relative(ref), uid);
  }

  /** Deletes the session's folder; answers whether it is gone (or never was). */
  remove(ref: SessionRef): Promise<boolean> {
    return removeFolder(this.python, this.folderOf(ref));
  }

  /**
   * At boot, before any session is placed here: the folders a previous process of this worker
   * left (it was killed; its sessions were handed back as lost) belong to nobody any more.
   * Answers how many tenant folders went. Only in a root of the worker's own.
   */
  async removeOrphans(): Promise<number> {
    if (!this.rootOwned) return 0;
    const entries = await readdir(this.rootDir, { withFileTypes: true }).catch(() => []);
    const folders = entries.filter((entry) => entry.isDirectory());
    const removed = await Promise.all(folders.map((entry) => removeFolder(this.python, join(this.rootDir, entry.name))));
    return removed.filter(Boolean).length;
  }

  /** At the end of a drain, once no kernel is left: every folder, and the root when empty. */
  async removeAll(): Promise<void> {
    if (!this.rootOwned) return;
    await this.removeOrphans();
    await rmdir(this.rootDir).catch(() => undefined);
  }
}

/**
 * A session's working folder when each kernel runs as a uid of its own (the worker is root and
 * shares the kernels' filesystem): `<root>/<tenant>/<session>`, created here and handed to the
 * kernel's uid, mode 0700, so no other kernel can enter it. A tenant's folder is 0711: kernels
 * pass through it but cannot list the sessions in it. When the session moves to a kernel with
 * another uid (reset, a lost kernel), everything in the folder changes owner with it; symbolic
 * links are re-owned themselves, never followed.
 *
 * @returns the folder's absolute path.
 */
async function prepareSessionFolder(rootDir: string, relative: string, uid: number): Promise<string> {
  const folder = join(rootDir, relative);
  // Synchronous: this runs before every warm execution, and the folder's inode is cached, so it
  // takes microseconds; the promise version's thread-pool hand-off was ~7 % of the worker's CPU
  // under load (npm run bench:profile).
  let ready: ReturnType<typeof lstatSync>;
  try {
    ready = lstatSync(folder, { throwIfNoEntry: false });
  } catch {
    ready = undefined;
  }
  if (ready?.isDirectory() && ready.uid === uid && (ready.mode & 0o777) === 0o700) return folder;
  const tenantFolder = dirname(folder);
  await mkdir(tenantFolder, { recursive: true });
  await chmod(tenantFolder, 0o711);
  await mkdir(folder, { recursive: true });
  const stat = await lstat(folder);
  if (!stat.isDirectory()) throw new Error(`${folder} is not a folder`);
  if (stat.uid !== uid) await chownTree(folder, uid);
  await chmod(folder, 0o700);
  return folder;
}

async function chownTree(top: string, uid: number): Promise<void> {
  const folders = [top];
  await lchown(top, uid, uid);
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    for await (const entry of await opendir(folder)) {
      const path = join(folder, entry.name);
      await lchown(path, uid, uid);
      if (entry.isDirectory()) folders.push(path);
    }
  }
}

/**
 * Deletes a folder of the worker's root with everything in it. Done by the file helper
 * (python/kernelfleet_files.py), which walks the folder descriptor by descriptor and never
 * follows a link, so code the kernel left running cannot steer the deletion outside the folder
 * by swapping a subfolder for a link. Answers whether the folder is gone.
 */
async function removeFolder(python: string, folder: string): Promise<boolean> {
  const child = spawn(python, ['-I', '-S', fileHelperScript(), dirname(folder), 'delete', basename(folder)], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8' },
    cwd: '/',
  });
  let answer = '';
  child.stdout.on('data', (d: Buffer) => (answer += d.toString()));
  const code = await once(child, 'close').then(([c]) => c as number | null, () => null);
  // Absent already (never used, or gone): nothing to do.
  return code === 0 && (/"ok": ?true/.test(answer) || /"not_found"/.test(answer));
}
