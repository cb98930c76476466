/**
 * Session files (wire contract, docs/files.md): operations on the files of a session's folder
 * on its home worker. Each one takes its turn in the session's lane like an execution; its
 * record is an execution whose `file` field says what it did.
 */

/** What a file operation does; stored in its execution record (wire contract: do not rename). */
export const FILE_OPS = ['put', 'get', 'delete', 'list', 'put-tar', 'get-tar'] as const;
export type FileOpKind = (typeof FILE_OPS)[number];

/** Operations that change the folder (they need the session's kernel, whose uid owns it). */
export const WRITING_FILE_OPS: readonly FileOpKind[] = ['put', 'delete', 'put-tar'];

/** A file operation as accepted: what the worker is asked to do. */
export interface FileOpRequest {
  op: FileOpKind;
  /** The file or folder, relative to the session's folder ('' is the folder itself, for tar and list). */
  path: string;
  /** The upload's size when the client said it (Content-Length). */
  declaredBytes?: number;
  /** `list`: paths starting with this; after `cursor`; at most `limit`. */
  prefix?: string;
  cursor?: string;
  limit?: number;
}

/** Why a file operation was refused by the worker; `status` is the HTTP status the api answers. */
export interface FileOpError {
  status: 400 | 404 | 409 | 413 | 500 | 503;
  code: string;
  detail: string;
}

/** `200`/`201` answer of `PUT …/files/{path}` (wire contract). */
export interface FileWritten {
  path: string;
  size: number;
  sha256: string;
}

/** One file of a listing. */
export interface FileEntry {
  path: string;
  size: number;
  /** Last change, ms since the epoch. */
  modifiedAt: number;
}

/** `200` answer of `GET /v1/sessions/{id}/files` (wire contract). */
export interface FileList {
  files: FileEntry[];
  /** Pass as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
}

/** `200` answer of `PUT …/files/{dir}?format=tar` (wire contract). */
export interface TarWritten {
  path: string;
  files: number;
  bytes: number;
}

/** What a finished file operation did, in its execution (`Execution.file`). */
export interface FileOpOutcome {
  op: FileOpKind;
  path: string;
  error?: FileOpError;
  written?: FileWritten & { created: boolean };
  list?: FileList;
  tar?: TarWritten;
  /** `get`: the bytes sent; `get-tar`: the archive's size. */
  bytes?: number;
}

/** `limit` of a listing when none is asked for, and the most one page holds. */
export const FILE_LIST_MAX = 1_000;
