import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where `name` is on the PATH, if it is. */
export function onPath(name: string): string | undefined {
  return (process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => join(dir, name)).find((file) => existsSync(file));
}

/**
 * Where `name` is on the PATH. Throws, saying what to install, when it is not: a deploy check
 * without its tool fails rather than passing unchecked (docs/operations.md, "Kubernetes").
 */
export function requireTool(name: string, install: string): string {
  const found = onPath(name);
  if (!found) throw new Error(`${name} is not on the PATH: ${install}`);
  return found;
}
