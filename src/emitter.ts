import type { Logger } from './logger.js';

/** Removes the listener it was returned for. */
export type Unsubscribe = () => void;

/** A small typed event emitter; a throwing listener is logged and does not disturb the others. */
export class TypedEvents<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(event: never) => void>>();

  constructor(private readonly logger: Logger) {}

  on<K extends keyof Events>(name: K, listener: (event: Events[K]) => void): Unsubscribe {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as (event: never) => void);
    return () => {
      set.delete(listener as (event: never) => void);
    };
  }

  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (event: Events[K]) => void)(event);
      } catch (error) {
        this.logger.error(`a "${String(name)}" listener threw`, { error });
      }
    }
  }
}
