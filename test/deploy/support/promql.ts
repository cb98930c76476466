import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { requireTool } from './external-tool';

/**
 * The metric names a PromQL expression reads: label matchers, ranges, groupings, strings and
 * function calls removed, what is left that looks like a name is a metric. Enough for the
 * expressions of k8s/ (no subqueries with offsets of their own, no @ modifiers). promtool says
 * whether an expression parses (checkRules below) but has no offline command that lists what
 * an expression reads.
 */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    const [token, call] = [match[0].replace(/\s*\($/, ''), match[1]];
    if (call || KEYWORDS.has(token.toLowerCase())) continue;
    names.add(token);
  }
  return [...names].sort();
}

/** A histogram's series (`_bucket`, `_sum`, `_count`) named by the histogram. */
export function baseMetricName(name: string, histograms: readonly string[]): string {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return histograms.includes(base) ? base : name;
}

const PROMTOOL_INSTALL = "install Debian's prometheus package (`apt-get install --no-install-recommends prometheus`), as `bash .ci/deploy-tools.sh` does";

/**
 * `promtool check rules` on rule groups (a PrometheusRule's `spec.groups`): every expression
 * parses, durations and labels are valid, annotation templates compile. `accepted` when it
 * exits 0; `report` is what it printed.
 */
export function checkRules(groups: unknown[]): { accepted: boolean; report: string } {
  const promtool = requireTool('promtool', PROMTOOL_INSTALL);
  const dir = mkdtempSync(join(tmpdir(), 'kf-rules-'));
  try {
    // Debian 12's promtool (2.42) reads rule files, not stdin; Prometheus' format: { groups: [...] }.
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, stringify({ groups }));
    const run = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8' });
    return { accepted: run.status === 0, report: `${run.stdout}${run.stderr || (run.error?.message ?? '')}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
