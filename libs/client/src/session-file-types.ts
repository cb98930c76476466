import type { FileWritten, TarWritten } from './types.js';

// The shapes of `client.files` (session-files.ts), apart so its Node helpers (files.ts) need them
// without needing the class.

/** What `write` stored (the api's answer), and whether the file is new: 201 rather than 200. */
export interface SessionFileWritten extends FileWritten {
  created: boolean;
}

/** What `syncDown` wrote to the local folder. */
export interface SessionFolderDownloaded {
  files: number;
  bytes: number;
}

/**
 * A file's content for `write`. A string is sent as UTF-8. A ReadableStream can be read once, so
 * a failed upload of one is retried only when none of it had gone yet.
 */
export type SessionFileData = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

export interface SessionFileCallOptions {
  /** Aborting it abandons the call (and any wait for a retry). */
  signal?: AbortSignal;
  /**
   * The operation's budget on the api, waiting for the session's turn (it may be running code)
   * included; the api's default applies when not given.
   */
  timeoutMs?: number;
}

export interface SessionFileListOptions extends SessionFileCallOptions {
  /** Only paths starting with this text (not necessarily a whole folder name). */
  prefix?: string;
  /** The `nextCursor` of the page before. */
  cursor?: string;
  /** Files per page, 1–1000 (the api's default is 1000). */
  limit?: number;
}

/** What the Node helpers (files.ts) call on `client.files`. */
export interface SessionFileCalls {
  write(sessionId: string, path: string, data: SessionFileData, opts?: SessionFileCallOptions): Promise<SessionFileWritten>;
  readStream(sessionId: string, path: string, opts?: SessionFileCallOptions): Promise<ReadableStream<Uint8Array>>;
  uploadTar(sessionId: string, dir: string, tar: Uint8Array | Blob | ReadableStream<Uint8Array>, opts?: SessionFileCallOptions): Promise<TarWritten>;
  downloadTar(sessionId: string, dir: string, opts?: SessionFileCallOptions): Promise<ReadableStream<Uint8Array>>;
}
