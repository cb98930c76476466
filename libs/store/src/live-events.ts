import type { RedisClient } from './redis-connection';

type Listener = (message: string) => void;

/**
 * One pub/sub connection shared by every listener of a process. Channels are subscribed while
 * someone listens and unsubscribed after the last one leaves.
 */
export class LiveEvents {
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly subscriber: RedisClient) {
    subscriber.on('message', (channel: string, message: string) => {
      for (const listener of this.listeners.get(channel) ?? []) listener(message);
    });
  }

  /** Resolves once Redis confirmed the subscription; the returned function unsubscribes. */
  async listen(channel: string, listener: Listener): Promise<() => void> {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    await this.subscriber.subscribe(channel);
    return () => {
      const current = this.listeners.get(channel);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(channel);
        void this.subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.subscriber.disconnect();
  }
}
