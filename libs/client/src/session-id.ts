/**
 * The session id `executePython` uses when none is given: the folder's name (characters an id
 * cannot hold become `-`, at most 48 kept) and a hash of its whole path, so two folders of the
 * same name are two sessions: `/home/ada/project` → `project-5c3a91e2`.
 */
export function sessionIdForFolder(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, '');
  const name = trimmed.slice(Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\')) + 1);
  const readable = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'root';
  // The trimmed path: `/a/b/` is the folder `/a/b`, one session (the root trims to nothing).
  return `${readable}-${fnv1a32(trimmed || path.slice(0, 1))}`;
}

/** The process's working folder where there is one (Node), else undefined (a browser). */
export function workingFolder(): string | undefined {
  const proc = (globalThis as { process?: { cwd?: () => string } }).process;
  return typeof proc?.cwd === 'function' ? proc.cwd() : undefined;
}

/** FNV-1a, 32 bits, of the text's UTF-16 code units, as 8 hex digits (an id, not a secret). */
function fnv1a32(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
