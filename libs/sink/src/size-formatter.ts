const UNITS = ['KB', 'MB', 'GB'] as const;

/**
 * Human-readable byte count with 1024-based units: `512 B`, `38.4 KB`, `1.2 MB`, `3.0 GB`.
 * @throws RangeError when `bytes` is negative or not finite.
 */
export function formatByteSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`byte count must be >= 0, got ${bytes}`);
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (unit < UNITS.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * The line put between head and tail when the middle of an output is dropped,
 * e.g. `\n[… 1200 lines elided (38.4 KB) …]\n`.
 * @param lines newline characters in the elided middle
 * @param bytes UTF-8 bytes in the elided middle
 */
export function formatElisionMarker(lines: number, bytes: number): string {
  return `\n[… ${lines} lines elided (${formatByteSize(bytes)}) …]\n`;
}
