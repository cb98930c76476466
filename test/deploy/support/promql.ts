/**
 * The metric names a PromQL expression reads: label matchers, ranges, groupings, strings and
 * function calls removed, what is left that looks like a name is a metric. Enough for the
 * expressions of k8s/ (no subqueries with offsets of their own, no @ modifiers).
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
