import type { ServiceDescription } from '../runtime/service.js';
import { collectContracts } from '../tooling/contracts.js';
import { describeService, type ServiceInput } from '../tooling/flows.js';
import { CliError } from './errors.js';
import { describeError, loadModule } from './load.js';

/** Exports that may be functions returning services; other functions are never called. */
const FACTORY_EXPORTS = new Set(['default', 'services']);

/**
 * Loads a services module and returns its services. A services module exports `Service` objects
 * (or their descriptions): each as its own export, in a `services` array, or returned by a
 * `default` or `services` function (which may be async).
 */
export async function loadServices(path: string, cwd: string): Promise<ServiceInput[]> {
  const exports = await loadModule(path, cwd);
  const found: ServiceInput[] = [];
  for (const [name, value] of Object.entries(exports)) {
    found.push(...(await servicesIn(name, value)));
  }
  const services = [...new Set(found)];
  if (services.length === 0) {
    throw new CliError(
      `${path} exports no services (its exports: ${listExports(exports)}). Export Service objects, ` +
        'a `services` array, or a default function that returns the services.',
    );
  }
  assertUniqueNames(path, services);
  return services;
}

async function servicesIn(name: string, value: unknown): Promise<ServiceInput[]> {
  if (isService(value)) return [value];
  if (typeof value === 'function' && FACTORY_EXPORTS.has(name)) {
    let result: unknown;
    try {
      result = await (value as () => unknown)();
    } catch (error) {
      throw new CliError(`the ${name} export threw: ${describeError(error)}`, { cause: error });
    }
    return servicesIn('', result);
  }
  return Array.isArray(value) ? value.filter(isService) : [];
}

function isService(value: unknown): value is ServiceInput {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<ServiceDescription> & { describe?: unknown };
  if (typeof v.describe === 'function') return typeof v.name === 'string';
  return typeof v.name === 'string' && Array.isArray(v.publishes) && Array.isArray(v.handlers);
}

function assertUniqueNames(path: string, services: readonly ServiceInput[]): void {
  const names = services.map((s) => describeService(s).name);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) {
    throw new CliError(`${path} exports two services named ${[...new Set(twice)].join(', ')}`);
  }
}

/** Loads a contracts module; fails when it exports no exchange or event. */
export async function loadContracts(path: string, cwd: string): Promise<Record<string, unknown>> {
  const exports = await loadModule(path, cwd);
  const { exchanges, events } = collectContracts(exports);
  if (exchanges.length === 0 && events.length === 0) {
    throw new CliError(
      `${path} exports no exchanges or events (its exports: ${listExports(exports)}). Export ` +
        'what defineExchange() and defineEvent() return.',
    );
  }
  return exports;
}

function listExports(exports: Readonly<Record<string, unknown>>): string {
  const names = Object.keys(exports);
  return names.length > 0 ? names.join(', ') : 'none';
}
