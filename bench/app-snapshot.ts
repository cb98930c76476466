import { chmodSync, cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

/**
 * Copies the compiled apps (dist/, scripts/, python/, libs/ for the Lua scripts; node_modules and .venv linked) to a
 * temporary directory and points the test Stack at it (KF_APP_ROOT), so every process of a
 * long run — replacements started minutes later included — runs the build the run began with,
 * even when dist/ is rebuilt meanwhile. Answers a function that removes the copy.
 */
export function snapshotApps(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kf-apps-'));
  chmodSync(dir, 0o711); // sandboxed kernels (users of their own) pass through to .venv
  for (const part of ['dist', 'scripts', 'python', 'libs']) cpSync(join(ROOT, part), join(dir, part), { recursive: true });
  for (const link of ['node_modules', '.venv']) symlinkSync(join(ROOT, link), join(dir, link));
  process.env.KF_APP_ROOT = dir;
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove); // also when the run fails before its own clean-up
  return { dir, remove };
}
