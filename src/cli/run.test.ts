import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { redactSecrets } from './io.js';
import { run } from './run.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the CLI in this process, capturing what it prints. The child-process tests are in cli.test.ts. */
async function runCli(args: readonly string[]) {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    cwd: root,
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

const services = 'src/cli/fixtures/services.ts';
const contracts = 'src/cli/fixtures/contracts.ts';

describe('run', () => {
  it.each([
    [
      ['contracts', 'check', '--help'],
      'Usage: tidings contracts check <snapshot> --contracts <module>',
    ],
    [['contracts', '--help'], 'Usage: tidings contracts <snapshot|check>'],
    [['topology', '-h'], 'Usage: tidings topology --services <module>'],
  ] as const)('prints help: %j', async (args, usage) => {
    const result = await runCli(args);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain(usage);
  });

  it('prints its version', async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    [[], 'Usage: tidings', 'stdout'],
    [['contracts'], 'Usage: tidings contracts', 'stdout'],
    [['contracts', 'diff'], 'unknown command "contracts diff"', 'stderr'],
    [
      ['topology'],
      '--services <module> is required. Run tidings topology --help for usage.',
      'stderr',
    ],
    [
      ['contracts', 'snapshot'],
      '--contracts <module> is required. Run tidings contracts snapshot --help',
      'stderr',
    ],
    [['contracts', 'check', '--contracts', contracts], 'the snapshot file is missing', 'stderr'],
    [
      ['contracts', 'check', 'a.json', 'b.json', '--contracts', contracts],
      'unexpected argument "b.json"',
      'stderr',
    ],
    [['topology', '--services', services, 'extra'], 'unexpected argument "extra"', 'stderr'],
    [
      ['topology', '--services', services, '--format', 'png'],
      '--format must be text, mermaid, svg (got png)',
      'stderr',
    ],
    [
      ['asyncapi', '--services', services, '--format', 'xml'],
      '--format must be json, yaml (got xml)',
      'stderr',
    ],
    [
      ['asyncapi', '--services', services, '--server', 'not a url'],
      '--server must be a URL',
      'stderr',
    ],
    [['topology', '--services'], '--services needs a value', 'stderr'],
  ] as const)('exits 2 on bad usage: %j', async (args, message, stream) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result[stream]).toContain(message);
  });
});

describe('run on bad input', () => {
  it.each([
    [
      ['topology', '--services', 'src/cli/fixtures/missing.ts'],
      /^tidings: no such file: .*missing\.ts\n$/,
    ],
    [['topology', '--services', 'src'], /^tidings: not a file: /],
    [
      ['contracts', 'snapshot', '--contracts', 'src/cli/fixtures/nothing.ts'],
      /exports no exchanges or events \(its exports: answer\)/,
    ],
    [
      ['contracts', 'check', 'nowhere.json', '--contracts', contracts],
      /no such snapshot: nowhere\.json \(write one with tidings contracts snapshot --out nowhere\.json\)/,
    ],
  ] as const)('exits 2 with a clear message: %j', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('exits 2 on a damaged snapshot, saying what is wrong', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tidings-run-')), 'damaged.json');
    writeFileSync(
      file,
      JSON.stringify({ format: 'tidings-contracts', formatVersion: 1, exchanges: [] }),
    );
    const result = await runCli(['contracts', 'check', file, '--contracts', contracts]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Not a Tidings contract snapshot');
    expect(result.stderr).toContain('$.exchanges: expected an object');
    expect(result.stderr).toContain('$.warnings: expected an array');
  });
});

describe('redactSecrets', () => {
  it('hides the password of every URL in a text, and leaves the rest', () => {
    expect(
      redactSecrets(
        'cannot reach amqp://app:s3cret@rabbit:5672/shop (then amqps://a:b@c/): gave up',
      ),
    ).toBe('cannot reach amqp://app:***@rabbit:5672/shop (then amqps://a:***@c/): gave up');
    expect(redactSecrets('see https://example.com/a:b and amqp://guest@host/')).toBe(
      'see https://example.com/a:b and amqp://guest@host/',
    );
  });
});
