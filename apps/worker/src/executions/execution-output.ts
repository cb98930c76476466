import type { DisplayOutput } from '@kernelfleet/contracts';
import { OutputSink, type SinkSummary } from '@kernelfleet/sink';
import type { ExecutionRef, ExecutionRepository } from '@kernelfleet/store';

/** Coalesce small stream chunks into one event up to this size, or until the next tick. */
const COALESCE_BYTES = 32 * 1024;

/**
 * The output of one running execution: every piece goes through the sink (sanitised,
 * counted, bounded) and out as events in the order it arrived; once the output overflows,
 * the full text is appended to the artifact. Redis commands are pipelined on one connection,
 * so events keep their order without awaiting each one.
 */
export class ExecutionOutput {
  readonly sink: OutputSink;
  readonly displays: DisplayOutput[] = [];
  private pending: { name: 'stdout' | 'stderr'; text: string } | null = null;
  private flushScheduled = false;
  private inFlight: Promise<unknown>[] = [];
  private artifactBytes = 0;
  private artifactCapped = false;

  constructor(
    private readonly ref: ExecutionRef,
    private readonly executions: ExecutionRepository,
    private readonly artifactMaxBytes: number,
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
      this.track(this.executions.emit(this.ref, 'status', output.data));
      return;
    }
    this.displays.push(output);
    if (output.type === 'text') this.sink.push(output.text);
    this.track(this.executions.emit(this.ref, 'display', output));
  }

  /** Flushes what is buffered and waits until Redis has every event and artifact byte. */
  async settle(): Promise<void> {
    this.flush();
    const inFlight = this.inFlight;
    this.inFlight = [];
    await Promise.all(inFlight);
  }

  finish(notice?: string): SinkSummary {
    return this.sink.finish(notice ? { notice } : {});
  }

  private flush(): void {
    this.flushScheduled = false;
    if (!this.pending) return;
    const { name, text } = this.pending;
    this.pending = null;
    this.track(this.executions.emit(this.ref, name, { text }));
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
