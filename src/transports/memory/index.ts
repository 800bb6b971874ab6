import { MemoryBroker, MemoryTransport } from './broker.js';

export { MemoryBroker, MemoryTransport } from './broker.js';

const named = new Map<string, MemoryBroker>();

/**
 * The in-process broker registered under `name` (default: `default`), created on first use.
 * `memory://` URLs resolve to these, so every service of one process that uses
 * `memory://` talks to the same broker.
 */
export function sharedMemoryBroker(name = 'default'): MemoryBroker {
  let broker = named.get(name);
  if (!broker) {
    broker = new MemoryBroker();
    named.set(name, broker);
  }
  return broker;
}

/** A transport on a new private broker, or on `broker` when given. */
export function memoryTransport(broker: MemoryBroker = new MemoryBroker()): MemoryTransport {
  return new MemoryTransport(broker);
}
