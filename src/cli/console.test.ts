import { describe, expect, it } from 'vitest';
import { consoleFetch } from '../../test/support/console.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { run } from './run.js';

const SERVICES = 'src/cli/fixtures/services.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      cwd: process.cwd(),
      stdout: (t: string) => out.push(t),
      stderr: (t: string) => err.push(t),
    },
  };
}

describe('tidings console', () => {
  it('serves the console of a services module until told to stop', async () => {
    const broker = new MemoryBroker();
    const { out, err, io: streams } = io();
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    const exit = run(
      ['console', '--services', SERVICES, '--port', '0', '--title', 'Shop'],
      streams,
      {
        brokerUrl: 'memory://ignored',
        confirm: async () => false,
        open: async () => broker.transport(),
        untilStopped: () => stopped,
      },
    );
    await waitFor(
      () => out.join('').includes('tidings console on'),
      'the console to start',
      15_000,
    );
    const url = /tidings console on (\S+)/.exec(out.join(''))![1]!;
    expect(out.join('')).toContain('(read-only; broker memory://ignored');
    const overview = (await (await consoleFetch(url, '/api/overview')).json()) as {
      title: string;
      allowWrites: boolean;
      model: { services: string[] };
    };
    expect(overview).toMatchObject({ title: 'Shop', allowWrites: false });
    expect(overview.model.services).toEqual(['checkout', 'mailer', 'payments']);
    stop();
    expect(await exit).toBe(0);
    expect(err.join('')).toBe('');
    await expect(fetch(url)).rejects.toThrow();
  });

  it('says what is wrong with its arguments', async () => {
    for (const [args, message] of [
      [['console'], '--services <module> is required'],
      [['console', '--services', SERVICES, '--port', 'x'], '--port must be a port number'],
      [
        ['console', '--services', SERVICES, '--bogus'],
        'unknown option --bogus. Run tidings console --help',
      ],
      [['console', '--services', SERVICES, '--alow-writes'], 'did you mean --allow-writes?'],
    ] as const) {
      const { err, io: streams } = io();
      const code = await run(args, streams, { brokerUrl: undefined, confirm: async () => false });
      expect(code, args.join(' ')).toBe(2);
      expect(err.join('')).toContain(message);
    }
    const { out, io: streams } = io();
    expect(await run(['console', '--help'], streams)).toBe(0);
    expect(out.join('')).toContain('--allow-writes');
    const main = io();
    await run(['--help'], main.io);
    expect(main.out.join('')).toContain('console ');
  });

  it('fails fast, without the password, when the broker cannot be reached', async () => {
    const { err, io: streams } = io();
    const code = await run(
      ['console', '--services', SERVICES, '--broker', 'amqp://user:hunter2@127.0.0.1:1/'],
      streams,
      { brokerUrl: undefined, confirm: async () => false, untilStopped: async () => {} },
    );
    expect(code).toBe(1);
    expect(err.join('')).toContain('amqp://user:***@127.0.0.1:1/');
    expect(err.join('')).not.toContain('hunter2');
  });
});
