import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = 'src/cli/main.ts';
const fixture = (name: string) => `src/cli/fixtures/${name}`;
const contracts = fixture('contracts.ts');
const services = fixture('services.ts');

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real CLI in a child process: `node --import tsx src/cli/main.ts ...args`. */
function tidings(args: readonly string[], via: 'import' | 'tsx-cli' = 'import'): Promise<Result> {
  const command =
    via === 'import'
      ? ['--import', 'tsx', main, ...args]
      : [join(root, 'node_modules/tsx/dist/cli.mjs'), main, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tidings-cli-'));
}

async function asyncApiErrors(document: string): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(document);
  return diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).map((d) => d.message);
}

describe.concurrent('tidings CLI', { timeout: 60_000 }, () => {
  it('prints help', async () => {
    const result = await tidings(['--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('Usage: tidings <command> [options]');
  });

  it('works when run as npx tsx src/cli/main.ts', async () => {
    const result = await tidings(['topology', '--services', services], 'tsx-cli');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('exchange cart');
  });

  it('exits 2 on an unknown option', async () => {
    const result = await tidings(['topology', '--services', services, '--bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'tidings: unknown option --bogus. Run tidings topology --help for usage.\n',
    );
  });

  it('exits 2 on a module with nothing to use', async () => {
    const result = await tidings(['topology', '--services', fixture('nothing.ts')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /exports no services \(its exports: answer\)\. Export Service objects/,
    );
  });

  it('never prints the password of a URL in an error', async () => {
    const result = await tidings(['topology', '--services', fixture('throws.ts')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('could not load');
    expect(result.stderr).toContain('amqp://shop:***@rabbit.internal:5672/shop');
    expect(result.stderr).not.toContain('hunter2');
  });
});

describe.concurrent('tidings contracts', { timeout: 60_000 }, () => {
  it('prints a snapshot', async () => {
    const result = await tidings(['contracts', 'snapshot', '--contracts', contracts]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const snapshot = JSON.parse(result.stdout);
    expect(snapshot.format).toBe('tidings-contracts');
    expect(Object.keys(snapshot.exchanges)).toEqual(['cart', 'payment']);
    expect(snapshot.exchanges.cart.events.checkout.versions).toHaveLength(2);
  });

  it('writes a snapshot, then checks contracts against it', async () => {
    const file = join(tempDir(), 'snapshots/contracts.json');
    const written = await tidings([
      'contracts',
      'snapshot',
      '--contracts',
      contracts,
      '--out',
      file,
    ]);
    expect(written.code).toBe(0);
    expect(written.stderr).toContain('contracts.json (2 exchanges, 3 events, 4 versions)');
    expect(JSON.parse(readFileSync(file, 'utf8')).format).toBe('tidings-contracts');

    const [same, next, broken] = await Promise.all([
      tidings(['contracts', 'check', file, '--contracts', contracts]),
      tidings(['contracts', 'check', file, '--contracts', fixture('contracts-next.ts')]),
      tidings(['contracts', 'check', file, '--contracts', fixture('contracts-broken.ts')]),
    ]);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain(
      'the contracts are compatible (2 exchanges, 3 events, 4 versions)',
    );

    expect(next.code).toBe(0);
    expect(next.stdout).toContain('Added since the snapshot: cart.v3.checkout, cart.v1.emptied.');

    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`${file}: 2 breaking changes.`);
    expect(broken.stdout).toContain(
      '  x event-removed: event cart.abandon is gone (renamed to "cart.abandoned"?).',
    );
    expect(broken.stdout).toContain(
      '  x schema-changed: cart.v1.checkout changed its schema (at /properties/coupon, /required).',
    );
    expect(broken.stdout).toContain(
      'Revert it, and make the new schema version 3, with an upcaster.',
    );
  });
});

describe.concurrent('tidings asyncapi', { timeout: 60_000 }, () => {
  it('prints a JSON document that parses, describing the broker without its credentials', async () => {
    const result = await tidings([
      'asyncapi',
      '--services',
      services,
      '--title',
      'Shop',
      '--api-version',
      '3.2.1',
      '--server',
      'amqp://shop:hunter2@rabbit.internal:5672/',
    ]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).not.toContain('hunter2');
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ asyncapi: '3.0.0', info: { title: 'Shop', version: '3.2.1' } });
    expect(doc.servers.broker).toMatchObject({ host: 'rabbit.internal:5672', protocol: 'amqp' });
    expect(await asyncApiErrors(result.stdout)).toEqual([]);
  });

  it('writes YAML when the output file ends in .yaml', async () => {
    const file = join(tempDir(), 'asyncapi.yaml');
    const result = await tidings([
      'asyncapi',
      '--services',
      services,
      '--contracts',
      contracts,
      '--out',
      file,
    ]);
    expect(result.code).toBe(0);
    const yaml = readFileSync(file, 'utf8');
    expect(yaml.startsWith('asyncapi: "3.0.0"\n')).toBe(true);
    expect(await asyncApiErrors(yaml)).toEqual([]);
  });
});

describe.concurrent('tidings topology', { timeout: 60_000 }, () => {
  it('prints text by default', async () => {
    const result = await tidings(['topology', '--services', services]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain(
      'exchange cart\n  cart.v1.abandon\n    published by  checkout\n',
    );
    expect(result.stdout).toContain('dead-lettered mailer  (queue mailer.receipts');
  });

  it('prints Mermaid, here of services from a default export function', async () => {
    const result = await tidings([
      'topology',
      '--services',
      fixture('services-factory.ts'),
      '--format',
      'mermaid',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('flowchart LR\n');
    expect(result.stdout).toContain('s_checkout -->|"cart.v2.checkout"| e_cart');
  });

  it('writes SVG when the output file ends in .svg', async () => {
    const file = join(tempDir(), 'topology.svg');
    const result = await tidings([
      'topology',
      '--services',
      services,
      '--out',
      file,
      '--title',
      'Shop',
    ]);
    expect(result.code).toBe(0);
    const svg = readFileSync(file, 'utf8');
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg ')).toBe(true);
    for (const name of ['checkout', 'payments', 'mailer', 'cart', 'payment', 'mailer.receipts']) {
      expect(svg).toContain(`>${name}</text>`);
    }
  });
});
