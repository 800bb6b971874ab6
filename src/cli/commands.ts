import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { asyncApi } from '../tooling/asyncapi.js';
import { type CompatibilityProblem, checkCompatibility } from '../tooling/check.js';
import {
  type ContractSnapshot,
  formatSnapshot,
  parseSnapshot,
  snapshot,
} from '../tooling/snapshot.js';
import { type TopologyFormat, topology } from '../tooling/topology.js';
import { toYaml } from '../tooling/yaml.js';
import { CliError } from './errors.js';
import { loadContracts, loadServices } from './inputs.js';
import { type Io, writeOutput } from './io.js';

/** `tidings contracts snapshot --contracts <module> [--out <file>]`. */
export async function snapshotCommand(
  options: { contracts: string; out: string | undefined },
  io: Io,
): Promise<number> {
  const current = await snapshot(await loadContracts(options.contracts, io.cwd));
  warn(io, current.warnings);
  await writeOutput(formatSnapshot(current), options.out, io, summary(current));
  return 0;
}

/** `tidings contracts check <snapshot> --contracts <module>`: exit 1 when something breaks. */
export async function checkCommand(
  options: { snapshot: string; contracts: string },
  io: Io,
): Promise<number> {
  const previous = await readSnapshot(options.snapshot, io.cwd);
  const current = await snapshot(await loadContracts(options.contracts, io.cwd));
  warn(io, current.warnings);
  const problems = checkCompatibility(previous, current);
  if (problems.length > 0) {
    io.stdout(formatProblems(problems, options.snapshot));
    return 1;
  }
  const added = additions(previous, current);
  io.stdout(
    `${options.snapshot}: the contracts are compatible (${summary(current)}).\n` +
      (added.length > 0
        ? `Added since the snapshot: ${added.join(', ')}.\nRecord them: tidings contracts ` +
          `snapshot --contracts ${options.contracts} --out ${options.snapshot}\n`
        : ''),
  );
  return 0;
}

async function readSnapshot(path: string, cwd: string): Promise<ContractSnapshot> {
  let text: string;
  try {
    text = await readFile(resolve(cwd, path), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'ENOENT'
        ? `no such snapshot: ${path} (write one with tidings contracts snapshot --out ${path})`
        : `cannot read ${path}: ${(error as Error).message}`,
    );
  }
  return parseSnapshot(text);
}

function formatProblems(problems: readonly CompatibilityProblem[], path: string): string {
  const lines = problems.map((p) => `  x ${p.code}: ${p.message}`);
  const count = problems.length === 1 ? '1 breaking change' : `${problems.length} breaking changes`;
  return `${path}: ${count}.\n${lines.join('\n')}\n`;
}

function summary(s: ContractSnapshot): string {
  const exchanges = Object.values(s.exchanges);
  const events = exchanges.flatMap((x) => Object.values(x.events));
  const versions = events.reduce((n, e) => n + e.versions.length, 0);
  return `${plural(exchanges.length, 'exchange')}, ${plural(events.length, 'event')}, ${plural(versions, 'version')}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function additions(previous: ContractSnapshot, current: ContractSnapshot): string[] {
  const keys = (s: ContractSnapshot) =>
    Object.values(s.exchanges).flatMap((x) =>
      Object.values(x.events).flatMap((e) => e.versions.map((v) => v.routingKey)),
    );
  const before = new Set(keys(previous));
  const exchanges = Object.keys(current.exchanges).filter((x) => !(x in previous.exchanges));
  return [...exchanges.map((x) => `exchange ${x}`), ...keys(current).filter((k) => !before.has(k))];
}

/** `tidings asyncapi --services <module> ...`. */
export async function asyncApiCommand(
  options: {
    services: string;
    contracts: string | undefined;
    out: string | undefined;
    format: string | undefined;
    title: string;
    apiVersion: string;
    server: string | undefined;
  },
  io: Io,
): Promise<number> {
  const format = pickFormat(options.format, options.out, ['json', 'yaml'], {
    '.yaml': 'yaml',
    '.yml': 'yaml',
  });
  if (options.server !== undefined) assertUrl(options.server);
  const document = await asyncApi({
    title: options.title,
    version: options.apiVersion,
    services: await loadServices(options.services, io.cwd),
    ...(options.contracts ? { contracts: await loadContracts(options.contracts, io.cwd) } : {}),
    ...(options.server ? { server: options.server } : {}),
  });
  const warnings = document['x-tidings-warnings'];
  warn(io, Array.isArray(warnings) ? warnings.map(String) : []);
  const text = format === 'yaml' ? toYaml(document) : `${JSON.stringify(document, null, 2)}\n`;
  await writeOutput(text, options.out, io, `AsyncAPI 3.0.0, ${format}`);
  return 0;
}

/** `tidings topology --services <module> [--format text|mermaid|svg] [--out <file>]`. */
export async function topologyCommand(
  options: {
    services: string;
    format: string | undefined;
    out: string | undefined;
    title: string | undefined;
  },
  io: Io,
): Promise<number> {
  const format = pickFormat<TopologyFormat>(
    options.format,
    options.out,
    ['text', 'mermaid', 'svg'],
    {
      '.svg': 'svg',
      '.mmd': 'mermaid',
      '.mermaid': 'mermaid',
    },
  );
  const services = await loadServices(options.services, io.cwd);
  const text = topology(services, {
    format,
    ...(options.title === undefined ? {} : { title: options.title }),
  });
  await writeOutput(text, options.out, io, `topology, ${format}`);
  return 0;
}

/** The `--format` given, else the one the output file's extension implies, else the first. */
function pickFormat<F extends string>(
  given: string | undefined,
  out: string | undefined,
  formats: readonly F[],
  byExtension: Readonly<Record<string, F>>,
): F {
  if (given !== undefined) {
    if (!(formats as readonly string[]).includes(given)) {
      throw new CliError(`--format must be ${formats.join(', ')} (got ${given})`);
    }
    return given as F;
  }
  return (out ? byExtension[extname(out).toLowerCase()] : undefined) ?? formats[0]!;
}

function assertUrl(url: string): void {
  try {
    new URL(url);
  } catch {
    throw new CliError('--server must be a URL, such as amqp://rabbitmq:5672/');
  }
}

function warn(io: Io, warnings: readonly string[]): void {
  for (const w of warnings) io.stderr(`warning: ${w}\n`);
}
