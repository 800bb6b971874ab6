import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy in front of RabbitMQ that a test can cut (every connection dies at once, as when
 * a network link or the broker fails) or take down (new connections are refused), without
 * disturbing anyone else using the broker.
 */
export class FlakyProxy {
  /** @param target the broker's URL (its host and port are what the proxy forwards to) */
  constructor(private readonly target: string) {}

  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      const broker = new URL(this.target);
      const upstream = tcpConnect({ host: broker.hostname, port: Number(broker.port || 5672) });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.server = server;
    return new Promise((resolve) =>
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as { port: number }).port;
        resolve();
      }),
    );
  }

  /** The broker's URL with the proxy's address in it: connect here. */
  get url(): string {
    const u = new URL(this.target);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** Kills every open connection; new ones are accepted. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Refuses new connections and kills the open ones. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.cut();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  async up(): Promise<void> {
    if (!this.server) await this.listen();
  }

  async stop(): Promise<void> {
    await this.down();
  }
}
