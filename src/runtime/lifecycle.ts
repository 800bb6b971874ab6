import { StateError } from '../errors.js';
import type { Topology } from '../transports/transport.js';
import { type Dispatcher, type Lane, releases } from './dispatch.js';
import type { ResolvedServiceOptions } from './options.js';
import type { EventPublisher } from './publishing.js';

/** Where a service is in its life: `idle` until `start()`, `stopped` for good after `stop()`. */
export type ServiceState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * Start and stop, and the states between. `start()` declares the topology, then consumes each
 * handler's queue; `stop()` stops taking messages, waits for the running handlers up to the
 * shutdown timeout, then aborts the rest, whose messages go back to their queues. Both are safe
 * to call in any order and more than once: a `stop()` during `start()` waits for it, then undoes it.
 */
export class Lifecycle {
  private current: ServiceState = 'idle';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** The instrumentation was told the service started, so it is told when it stops. */
  private observed = false;

  constructor(
    private readonly service: ResolvedServiceOptions,
    private readonly dispatcher: Dispatcher,
    private readonly publisher: EventPublisher,
    /** Aborted when the grace period of `stop()` is over. */
    private readonly abort: AbortController,
  ) {}

  get state(): ServiceState {
    return this.current;
  }

  start(topology: Topology, lanes: readonly Lane[]): Promise<void> {
    if (this.current !== 'idle') {
      return Promise.reject(new StateError(`${this.service.name}: start() was already called`));
    }
    this.current = 'starting';
    this.starting = this.begin(topology, lanes);
    return this.starting;
  }

  stop(lanes: readonly Lane[]): Promise<void> {
    this.stopping ??= this.end(lanes);
    return this.stopping;
  }

  private async begin(topology: Topology, lanes: readonly Lane[]): Promise<void> {
    const transport = this.service.transport;
    try {
      await transport.declare(topology);
      this.publisher.markDeclared(topology.exchanges);
      for (const lane of lanes) {
        lane.consumer = await transport.consume(
          lane.queue,
          { prefetch: lane.handler.prefetch },
          (d) => this.dispatcher.deliver(lane, d),
        );
      }
      // stop() may have been called meanwhile; it waits for this, then cancels the consumers.
      if (this.current === 'starting') this.current = 'running';
      if (this.service.instrumentation?.started) {
        this.service.instrumentation.started(lanes.map((lane) => lane.handler.queue));
        this.observed = true;
      }
    } catch (error) {
      this.current = 'stopped';
      this.dispatcher.close();
      await Promise.allSettled(lanes.map((lane) => lane.consumer?.cancel()));
      throw error;
    }
  }

  private async end(lanes: readonly Lane[]): Promise<void> {
    if (this.current === 'idle') {
      this.current = 'stopped';
      return;
    }
    this.current = 'stopping';
    this.dispatcher.close();
    await this.starting?.catch(() => {});
    // Partitions keep consuming (what arrives is held, unsettled) until their running message is
    // done, then release their consumers: see `releases`.
    const released = lanes.filter(releases);
    await Promise.allSettled(
      lanes.filter((lane) => !releases(lane)).map((lane) => lane.consumer?.cancel()),
    );
    await this.dispatcher.returnWaiting(lanes);
    const timeoutMs = this.service.shutdownTimeoutMs;
    if (!(await this.dispatcher.idle(timeoutMs))) {
      this.service.logger.warn(
        `${this.dispatcher.held} handler(s) still running after ${timeoutMs} ms; aborting them`,
      );
      this.abort.abort(new StateError(`${this.service.name} is shutting down`));
      await this.dispatcher.idle(1000);
    }
    await Promise.allSettled(released.map((lane) => lane.consumer?.release?.()));
    this.current = 'stopped';
    if (this.observed) this.service.instrumentation?.stopped?.();
  }
}
