import { readFileSync } from 'node:fs';
import { repoPath } from './kustomize';

/**
 * The capabilities docs/security.md gives the worker container ("all capabilities dropped but
 * `SETUID`, …"), sorted: the deployment files must grant exactly these.
 */
export function securityDocCapabilities(): string[] {
  const text = readFileSync(repoPath('docs', 'security.md'), 'utf8').replace(/\s+/g, ' ');
  const sentence = /all capabilities dropped but (.*?)\(/.exec(text);
  if (!sentence) throw new Error('docs/security.md no longer names the worker capabilities');
  const caps = [...sentence[1].matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]).sort();
  if (caps.length < 3) throw new Error(`docs/security.md names too few capabilities: ${caps.join(', ')}`);
  return caps;
}

/** What a container keeps: everything unless ALL is dropped, then what is added back. */
export function containerCapabilities(drop: readonly string[] = [], add: readonly string[] = []): string[] | 'default' {
  return drop.includes('ALL') ? [...add].sort() : 'default';
}
