import { connect, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy in front of the api (loopback only) that drops every open connection on demand
 * or on a timer. Both sockets are destroyed, which is what a client sees when a load balancer,
 * a NAT or the network drops a connection: reads fail with an error, mid-stream.
 */
export class TcpProxy {
  /** Connections accepted so far. */
  accepted = 0;
  /** Connections this proxy cut (not those either side closed). */
  cut = 0;
  private readonly pairs = new Set<Pair>();
  private timer?: NodeJS.Timeout;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections open right now. */
  get open(): number {
    return this.pairs.size;
  }

  /** Starts a proxy to `target` (`http://127.0.0.1:PORT`) on a free loopback port. */
  static async start(target: string): Promise<TcpProxy> {
    const { hostname, port } = new URL(target);
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, hostname, Number(port)));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  private accept(client: Socket, host: string, port: number): void {
    this.accepted += 1;
    const upstream = connect({ host, port });
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    const forget = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private drop(pair: Pair): void {
    if (!this.pairs.has(pair)) return;
    this.pairs.delete(pair);
    this.cut += 1;
    pair.client.destroy();
    pair.upstream.destroy();
  }

  /** Cuts every open connection; answers how many. */
  dropAll(): number {
    const open = [...this.pairs];
    for (const pair of open) this.drop(pair);
    return open.length;
  }

  /** Cuts every open connection every `ms` until `stopDropping`; `onDrop` hears how many each time. */
  dropEvery(ms: number, onDrop?: (cut: number) => void): void {
    this.stopDropping();
    this.timer = setInterval(() => {
      const cut = this.dropAll();
      onDrop?.(cut);
    }, ms);
  }

  stopDropping(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.stopDropping();
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
