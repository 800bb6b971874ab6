import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { type AmqpTransport, type AmqpTransportOptions, amqpTransport } from './index.js';

/*
 * amqps:// end to end without touching the shared broker's configuration: the test makes a CA, a
 * server certificate for "localhost" and a client certificate with openssl, and puts a TLS
 * listener that requires a client certificate in front of RabbitMQ's plain port. The transport's
 * TLS options (ca, cert, key, servername) are what is under test.
 */

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');
const run = promisify(execFile);
const haveOpenssl =
  up &&
  (await run('openssl', ['version']).then(
    () => true,
    () => false,
  ));
if (up && !haveOpenssl) console.warn('\n  SKIPPED: the TLS tests need the openssl command.\n');

interface Pki {
  ca: string;
  otherCa: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
}

async function makePki(dir: string): Promise<Pki> {
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  for (const ca of ['ca', 'other']) {
    await openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=tidings test ${ca}`,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.pem`,
    );
  }
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost\n');
  for (const who of ['server', 'client']) {
    await openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who === 'server' ? 'localhost' : 'tidings client'}`,
      '-keyout',
      `${who}.key`,
      '-out',
      `${who}.csr`,
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-out',
      `${who}.pem`,
      ...(who === 'server' ? ['-extfile', 'san.cnf'] : []),
    );
  }
  return {
    ca: read('ca.pem'),
    otherCa: read('other.pem'),
    serverKey: read('server.key'),
    serverCert: read('server.pem'),
    clientKey: read('client.key'),
    clientCert: read('client.pem'),
  };
}

describe.skipIf(!haveOpenssl)('RabbitMQ over TLS (amqps://)', () => {
  let dir: string;
  let pki: Pki;
  let server: Server;
  let port: number;
  const transports: AmqpTransport[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tidings-tls-'));
    pki = await makePki(dir);
    server = createServer(
      {
        key: pki.serverKey,
        cert: pki.serverCert,
        ca: pki.ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (client) => {
        const upstream = tcpConnect({ host: broker.hostname, port: Number(broker.port || 5672) });
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        client.pipe(upstream).pipe(client);
      },
    );
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  }, 60_000);

  afterAll(async () => {
    for (const t of transports) await t.close();
    await new Promise((resolve) => server?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function open(options: AmqpTransportOptions): AmqpTransport {
    const t = amqpTransport({
      url: `amqps://${broker.username || 'guest'}:${broker.password || 'guest'}@127.0.0.1:${port}`,
      logger: silentLogger,
      connectTimeoutMs: 3000,
      ...options,
    });
    transports.push(t);
    return t;
  }

  it('connects with a CA, a client certificate and a server name, then publishes and consumes', async () => {
    const t = open({
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, servername: 'localhost' },
    });
    const exchange = uniqueName('tls');
    const topology = {
      exchanges: [exchange],
      queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: '#' }] }],
    };
    await t.declare(topology);
    try {
      const got: string[] = [];
      await t.consume(`${exchange}.q`, { prefetch: 1 }, (d) => {
        got.push(d.message.body.toString());
        void d.ack();
      });
      expect(
        await t.publish({
          exchange,
          routingKey: 'k',
          body: Buffer.from('secret stuff'),
          properties: { headers: {} },
        }),
      ).toEqual({ routed: true });
      const deadline = Date.now() + 5000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(got).toEqual(['secret stuff']);
    } finally {
      await t.deleteTopology(topology, { exchanges: true });
    }
  });

  it('refuses a broker certificate signed by another CA, at once and without the password', async () => {
    const started = Date.now();
    const t = open({
      tls: { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey, servername: 'localhost' },
    });
    const error = await t.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(
      /amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\/.*(self.signed|certificate)/i,
    );
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('refuses a server name the certificate does not carry', async () => {
    const t = open({
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, servername: 'rabbit.example' },
    });
    const error = await t.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/rabbit\.example|altnames/i);
  });

  it('is turned away by a listener that requires a client certificate when it has none', async () => {
    const t = open({ tls: { ca: pki.ca, servername: 'localhost' } });
    const started = Date.now();
    const error = await t.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/certificate required/);
    expect(Date.now() - started).toBeLessThan(2500);
  });
});
