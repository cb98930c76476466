import type { DisplayOutput } from '@kernelfleet/contracts';
import { OutputSink, type SinkSummary } from '@kernelfleet/sink';
import type { ExecutionRef, ExecutionRepository } from '@kernelfleet/store';

/** Coalesce small stream chunks into one event up to this size, or until the next tick. */
const COALESCE_BYTES = 32 * 1024;
/** Stream events carry at most this many characters (a kernel sends up to ~1 MiB at once). */
const EVENT_MAX_CHARS = 64 * 1024;
/** Live events held while Redis is unreachable, at most (the oldest go first beyond it). */
const HOLD_MAX_BYTES = 1024 * 1024;
/** How often held events check whether Redis is back. */
const HOLD_RETRY_MS = 250;

type EventType = 'stdout' | 'stderr' | 'display' | 'status';
interface HeldEvent {
  type: EventType;
  data: unknown;
  bytes: number;
}

/**
 * The output of one running execution: every piece goes through the sink (sanitised,
 * counted, bounded) and out as events in the order it arrived; once the output overflows,
 * the full text is appended to the artifact. Redis commands are pipelined on one connection,
 * so events keep their order without awaiting each one.
 *
 * While Redis is unreachable, events are held here (in order, stream text coalesced) and sent
 * once it is back. What is held is capped at HOLD_MAX_BYTES: beyond it the oldest held output is
 * dropped from the live stream and a notice says so (the sink's result and the artifact still
 * have all of it; output that large has overflowed into the artifact).
 */
export class ExecutionOutput {
  readonly sink: OutputSink;
  readonly displays: DisplayOutput[] = [];
  private pending: { name: 'stdout' | 'stderr'; text: string } | null = null;
  private flushScheduled = false;
  private inFlight: Promise<unknown>[] = [];
  private artifactBytes = 0;
  private artifactCapped = false;
  private held: HeldEvent[] = [];
  private heldBytes = 0;
  private droppedBytes = 0;
  private holdTimer?: NodeJS.Timeout;
  /** Stream characters sent live so far (capped at `liveMaxChars`). */
  private liveChars = 0;

  constructor(
    private readonly ref: ExecutionRef,
    private readonly executions: ExecutionRepository,
    private readonly artifactMaxBytes: number,
    /** Stream output sent live (pub/sub and replay stream), at most; the rest goes to the result and artifact only. */
    private readonly liveMaxChars: number,
    /** Whether Redis is reachable now; events are held while it is not. */
    private readonly connected: () => boolean = () => true,
  ) {
    this.sink = new OutputSink({ onArtifact: (text) => this.appendArtifact(text) });
  }

  get overflowed(): boolean {
    return this.artifactBytes > 0;
  }

  stream(name: 'stdout' | 'stderr', raw: string): void {
    const text = this.sink.push(raw);
    if (!text) return;
    if (this.pending && this.pending.name !== name) this.flush();
    if (this.pending) this.pending.text += text;
    else this.pending = { name, text };
    if (this.pending.text.length >= COALESCE_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  display(output: DisplayOutput): void {
    this.flush();
    if (output.type === 'status') {
      this.status(output.event);
      return;
    }
    this.displays.push(output);
    if (output.type === 'text') this.sink.push(output.text);
    this.send('display', output);
  }

  /** A status event: sent live, and kept in the result's displayOutputs in its place. */
  status(event: unknown): void {
    this.flush();
    this.keepStatus(event);
    this.send('status', event);
  }

  /** A status event already sent by a script of the store (the tool bridge's): kept in the result. */
  keepStatus(event: unknown): void {
    this.displays.push({ type: 'status', event });
  }

  /**
   * Puts everything so far on the connection, in order, without waiting: a command sent after
   * this one (a tool call's event) comes after the output printed before it.
   */
  sendPending(): void {
    this.flush();
    this.release(true);
  }

  /**
   * Flushes what is buffered and waits until Redis has every event and artifact byte (after an
   * outage: until Redis is back; the connection holds the commands until then, in order).
   */
  async settle(): Promise<void> {
    this.flush();
    this.release(true);
    const inFlight = this.inFlight;
    this.inFlight = [];
    await Promise.all(inFlight);
  }

  finish(notice?: string): SinkSummary {
    return this.sink.finish(notice ? { notice } : {});
  }

  /**
   * Sends the coalesced stream text, in events of at most EVENT_MAX_CHARS, until the live budget
   * is spent; then one notice, and nothing more of the stream goes out live.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (!this.pending) return;
    const { name, text } = this.pending;
    this.pending = null;
    const room = this.liveMaxChars - this.liveChars;
    if (room <= 0) return;
    const live = text.length <= room ? text : text.slice(0, room);
    for (let at = 0; at < live.length; at += EVENT_MAX_CHARS) this.send(name, { text: live.slice(at, at + EVENT_MAX_CHARS) });
    this.liveChars += live.length;
    if (live.length < text.length) {
      this.liveChars = this.liveMaxChars;
      const notice = `\n[kernelfleet: live output stops after ${this.liveMaxChars} characters; the result and the artifact have the rest]\n`;
      this.send('stderr', { text: notice });
    }
  }

  private send(type: EventType, data: unknown): void {
    if (this.held.length === 0 && this.connected()) {
      this.track(this.executions.emit(this.ref, type, data));
      return;
    }
    this.hold(type, data);
  }

  private hold(type: EventType, data: unknown): void {
    const last = this.held[this.held.length - 1];
    const isStream = type === 'stdout' || type === 'stderr';
    const bytes = isStream ? (data as { text: string }).text.length : JSON.stringify(data).length;
    if (isStream && last?.type === type) (last.data as { text: string }).text += (data as { text: string }).text;
    else this.held.push({ type, data: isStream ? { text: (data as { text: string }).text } : data, bytes: 0 });
    this.held[this.held.length - 1].bytes += bytes;
    this.heldBytes += bytes;
    while (this.heldBytes > HOLD_MAX_BYTES && this.held.length) {
      const first = this.held[0];
      const excess = this.heldBytes - HOLD_MAX_BYTES;
      if ((first.type === 'stdout' || first.type === 'stderr') && first.bytes > excess) {
        const held = first.data as { text: string };
        held.text = held.text.slice(excess);
        first.bytes -= excess;
        this.heldBytes -= excess;
        this.droppedBytes += excess;
      } else {
        this.held.shift();
        this.heldBytes -= first.bytes;
        this.droppedBytes += first.bytes;
      }
    }
    if (!this.holdTimer) {
      this.holdTimer = setTimeout(() => {
        this.holdTimer = undefined;
        this.release(false);
      }, HOLD_RETRY_MS);
      this.holdTimer.unref();
    }
  }

  /** Sends the held events once Redis is back (or now, with `force`: the connection queues them). */
  private release(force: boolean): void {
    if (this.held.length === 0) return;
    if (!force && !this.connected()) {
      this.holdTimer ??= setTimeout(() => {
        this.holdTimer = undefined;
        this.release(false);
      }, HOLD_RETRY_MS);
      this.holdTimer.unref();
      return;
    }
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    if (this.droppedBytes > 0) {
      const notice = `[kernelfleet: ${this.droppedBytes} characters of output were not streamed live while Redis was unreachable; the result and the artifact have all of it]\n`;
      this.track(this.executions.emit(this.ref, 'stderr', { text: notice }));
      this.droppedBytes = 0;
    }
    for (const event of held) this.track(this.executions.emit(this.ref, event.type, event.data));
  }

  private appendArtifact(text: string): void {
    if (this.artifactCapped) return;
    const room = this.artifactMaxBytes - this.artifactBytes;
    const bytes = Buffer.byteLength(text);
    const piece = bytes <= room ? text : Buffer.from(text).subarray(0, room).toString('utf8');
    this.artifactCapped = bytes > room;
    this.artifactBytes += Math.max(1, Buffer.byteLength(piece));
    this.track(this.executions.appendArtifact(this.ref, piece));
  }

  private track(promise: Promise<unknown>): void {
    this.inFlight.push(promise.catch(() => undefined));
    if (this.inFlight.length > 256) {
      const settled = this.inFlight;
      this.inFlight = [Promise.all(settled)];
    }
  }
}
