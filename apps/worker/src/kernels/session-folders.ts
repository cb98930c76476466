import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, lstatSync, mkdirSync, renameSync } from 'node:fs';
import { chmod, lchown, lstat, mkdir, opendir, readdir, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { findLauncherScript } from '@kernelfleet/kernel';
import type { SessionRef } from '@kernelfleet/store';

/** python/kernelfleet_files.py: every file operation inside a session's folder goes through it. */
export function fileHelperScript(): string {
  return join(dirname(findLauncherScript()), 'kernelfleet_files.py');
}

/** An id as one plain folder name: `.`, `:` and `%` escaped, so ids like `..` stay one folder. */
const escapeId = (id: string) => id.replace(/[.:%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The sessions' folders on this worker, under its own root (`KERNEL_ROOT_DIR`): where each is,
 * and their removal when the session leaves (culled, disposed, drained, its kernels lost) — its
 * files go with its kernel (docs/files.md).
 *
 * A kernel started before it has a session (the warm pool's, or any kernel running as a user of
 * its own) waits in a staging folder of its own, `pool:<worker>/<random>`: a name no tenant's
 * folder can have (`:` is not in a tenant name, and is escaped in a session id). When it is given
 * to a new session, its folder is renamed to the session's, and the kernel, whose working
 * directory is that folder, is in the session's folder without running a cell (`settle`).
 */
export class SessionFolders {
  /** This worker's staging folders, relative to the root. */
  private readonly stagingRoot: string;

  constructor(
    readonly rootDir: string,
    private readonly python: string,
    /** Whether everything under the root is the worker's to delete (see WorkerConfig.jupyter). */
    private readonly rootOwned: boolean,
    workerId: string,
  ) {
    this.stagingRoot = `pool:${escapeId(workerId)}`;
  }

  /** `<tenant>/<session>`, each id escaped to one plain folder name. */
  relative(ref: SessionRef): string {
    return `${escapeId(ref.tenant)}/${escapeId(ref.sessionId)}`;
  }

  /** A new staging folder's path relative to the root, for a kernel about to start there (not made yet). */
  newStaging(): string {
    return `${this.stagingRoot}/${randomBytes(6).toString('hex')}`;
  }

  /** The session's folder relative to a staging folder (two levels below the root). */
  relativeFromStaging(ref: SessionRef): string {
    return `../../${this.relative(ref)}`;
  }

  /** A staging folder is handed to its kernel's uid, as a session's folder would be (prepareSessionFolder). */
  async handStaging(staging: string, uid: number): Promise<void> {
    const folder = join(this.rootDir, staging);
    await chmod(dirname(folder), 0o711);
    await chownTree(folder, uid);
    await chmod(folder, 0o700);
  }

  /**
   * Makes a staging folder the session's folder by renaming it, when the session has no folder
   * yet: its kernel's working directory is then the session's folder. `sandboxed`: the tenant's
   * folder is made 0711, as prepareSessionFolder makes it. Synchronous: it runs on a new
   * session's first execution, and a rename and a stat or two take microseconds.
   *
   * @returns false when the session has a folder already (its files stay where they are) or the
   * rename failed: the kernel is still in its staging folder.
   */
  settle(staging: string, ref: SessionRef, sandboxed: boolean): boolean {
    const folder = this.folderOf(ref);
    try {
      if (lstatSync(folder, { throwIfNoEntry: false })) return false;
      const tenantFolder = dirname(folder);
      if (mkdirSync(tenantFolder, { recursive: true }) !== undefined && sandboxed) chmodSync(tenantFolder, 0o711);
      renameSync(join(this.rootDir, staging), folder);
      return true;
    } catch {
      return false;
    }
  }

  /** Deletes a staging folder whose kernel got no session, or moved into one by a cell. */
  removeStaging(staging: string): Promise<boolean> {
    return removeFolder(this.python, join(this.rootDir, staging));
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
   * At boot, before any kernel starts here: the folders a previous process of this worker left
   * (it was killed; its sessions were handed back as lost) belong to nobody any more. Answers
   * how many tenant folders went. In a root that is not the worker's own, only its staging
   * folders go.
   */
  async removeOrphans(): Promise<number> {
    const staging = removeFolder(this.python, join(this.rootDir, this.stagingRoot));
    if (!this.rootOwned) return staging.then(() => 0);
    const entries = await readdir(this.rootDir, { withFileTypes: true }).catch(() => []);
    const folders = entries.filter((entry) => entry.isDirectory() && entry.name !== this.stagingRoot);
    const removed = await Promise.all(folders.map((entry) => removeFolder(this.python, join(this.rootDir, entry.name))));
    await staging;
    return removed.filter(Boolean).length;
  }

  /**
   * At the end of a drain, once no kernel is left: every folder, and the root when empty. In a
   * root that is not the worker's own, only its staging folders.
   */
  async removeAll(): Promise<void> {
    await this.removeOrphans();
    if (!this.rootOwned) return;
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
