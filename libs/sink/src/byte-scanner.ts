const NEWLINE = 0x0a;

/** Number of `\n` bytes in `bytes`. */
export function countNewlines(bytes: Buffer): number {
  let count = 0;
  for (let i = bytes.indexOf(NEWLINE); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) count++;
  return count;
}

function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

/** Largest code point boundary of UTF-8 `bytes` that is at or before `index`. */
export function floorToCodePoint(bytes: Buffer, index: number): number {
  let i = Math.min(index, bytes.length);
  while (i > 0 && i < bytes.length && isContinuation(bytes[i])) i--;
  return i;
}

/** Smallest code point boundary of UTF-8 `bytes` that is at or after `index`. */
export function ceilToCodePoint(bytes: Buffer, index: number): number {
  let i = Math.max(index, 0);
  while (i < bytes.length && isContinuation(bytes[i])) i++;
  return i;
}
