import type { ExecutionRef, KeySpace } from './keys';
import type { RedisClient } from './redis-connection';
import { Receiver, Sender } from './file-transfer-ends';
import { MIN_TTL_MS, type FileReceiver, type FileSender, type FileTransferOptions, type Settings } from './file-transfer-protocol';

export {
  TransferAbortedError,
  TransferGoneError,
  TransferIdleError,
  type FileReceiver,
  type FileSender,
  type FileTransferOptions,
  type StillWanted,
} from './file-transfer-protocol';

/**
 * Makes both ends of file transfers. Either end may be made first: the lists keep what one side
 * sends before the other reads. Each end reads through a connection of its own (a blocking read
 * holds it), opened on first use and ended by `close()`; works on one Redis and on a Redis Cluster
 * (both lists share the execution's slot).
 */
export class FileTransfers {
  private readonly settings: Settings;

  /** Throws a RangeError when an option is not a positive integer. */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    opts: FileTransferOptions = {},
  ) {
    const settings = {
      chunkBytes: opts.chunkBytes ?? 256 * 1024,
      window: opts.window ?? 8,
      idleMs: opts.idleMs ?? 30_000,
      sliceMs: opts.sliceMs ?? 1_000,
    };
    for (const [name, value] of Object.entries(settings)) {
      if (!Number.isInteger(value) || value <= 0) throw new RangeError(`FileTransfers: ${name} must be a positive integer, got ${value}`);
    }
    // A list outlives every wait of a live side: a side that hears nothing for idleMs gives up, so
    // only a transfer both sides left expires. (A list that expired under a live transfer would lose
    // chunks; the end's byte count would catch that, but it should not happen.)
    this.settings = { ...settings, ttlMs: Math.max(MIN_TTL_MS, 4 * settings.idleMs) };
  }

  sender(ref: ExecutionRef): FileSender {
    return new Sender(this.redis, this.settings, this.keys.fileData(ref), this.keys.fileCredit(ref));
  }

  receiver(ref: ExecutionRef): FileReceiver {
    return new Receiver(this.redis, this.settings, this.keys.fileData(ref), this.keys.fileCredit(ref));
  }
}
