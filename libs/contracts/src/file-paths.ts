/** A session file's path, at most (UTF-8 bytes, after decoding) (wire contract). */
export const FILE_PATH_MAX_BYTES = 1024;
/** One name in a session file's path, at most (UTF-8 bytes): what Linux allows. */
export const FILE_NAME_MAX_BYTES = 255;

/** A checked path relative to the session's folder, or why it was refused (one sentence). */
export type FilePathCheck = { ok: true; path: string } | { ok: false; message: string };

const STILL_ENCODED = /%[0-9A-Fa-f]{2}/;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * A session file's path from the URL: `encoded` is the raw remainder after `/files/` (no query
 * string), decoded here exactly once. Refuses what could name anything but a file below the
 * session's folder, or name it in two ways: an empty path, a leading `/`, empty, `.` or `..`
 * names, control characters (NUL included), backslashes, invalid UTF-8 (overlong forms
 * included), anything still percent-encoded after one decode, more than FILE_PATH_MAX_BYTES,
 * a name over FILE_NAME_MAX_BYTES. Never throws.
 */
export function parseFilePath(encoded: string): FilePathCheck {
  return parseEncoded(encoded, false);
}

/**
 * A session folder's path from the URL (tar upload and download), as parseFilePath but `''`
 * (the session's folder itself) is taken too.
 */
export function parseFileFolder(encoded: string): FilePathCheck {
  return parseEncoded(encoded, true);
}

/**
 * A list prefix (the query value, already decoded): files whose path starts with it are listed.
 * May be empty and may end with `/`; its last part is only the start of a name, so it may be
 * `.` or `..` too (`.` lists `.hidden`); everything before it is refused as parseFilePath
 * refuses it.
 */
export function checkListPrefix(prefix: string): FilePathCheck {
  if (prefix === '') return { ok: true, path: '' };
  const problem = pathProblem(prefix, 'The prefix', true);
  return problem ? { ok: false, message: problem } : { ok: true, path: prefix };
}

function parseEncoded(encoded: string, rootAllowed: boolean): FilePathCheck {
  if (encoded === '' && rootAllowed) return { ok: true, path: '' };
  let path: string;
  try {
    path = decodeURIComponent(encoded);
  } catch {
    return { ok: false, message: 'The file path is not valid percent-encoded UTF-8.' };
  }
  const problem = pathProblem(path, 'The file path', false);
  return problem ? { ok: false, message: problem } : { ok: true, path };
}

/** Why a decoded path is refused, as a sentence starting with `subject`; undefined if it is not. */
function pathProblem(path: string, subject: string, partialLast: boolean): string | undefined {
  if (path === '') return `${subject} is empty.`;
  const encodedTwice = STILL_ENCODED.exec(path);
  if (encodedTwice) return `${subject} is percent-encoded twice ("${encodedTwice[0]}" is left after decoding once); encode it once.`;
  if (CONTROL_CHARACTER.test(path)) return `${subject} holds a control character (NUL, a line break, …).`;
  if (path.includes('\\')) return `${subject} holds a backslash; folders are separated by /.`;
  if (utf8Bytes(path) > FILE_PATH_MAX_BYTES) return `${subject} is longer than ${FILE_PATH_MAX_BYTES} bytes in UTF-8.`;
  if (path.startsWith('/')) return `${subject} starts with /; give it relative to the session's folder.`;
  const names = path.split('/');
  const wholeNames = partialLast ? names.slice(0, -1) : names;
  if (wholeNames.includes('')) return `${subject} has an empty name (// or a / at the end).`;
  if (wholeNames.some((name) => name === '.' || name === '..')) return `${subject} has a "." or ".." name; give it without them.`;
  if (names.some((name) => utf8Bytes(name) > FILE_NAME_MAX_BYTES)) return `${subject} has a name longer than ${FILE_NAME_MAX_BYTES} bytes in UTF-8.`;
  return undefined;
}
