// The few parts of Rascal (which ships no types) that the benchmark uses.
declare module 'rascal' {
  import type { EventEmitter } from 'node:events';

  namespace Rascal {
    interface Publication extends EventEmitter {
      on(event: 'success', listener: (messageId: string) => void): this;
      on(event: 'error', listener: (error: Error, messageId: string) => void): this;
    }

    interface SubscriberSession extends EventEmitter {
      on(
        event: 'message',
        listener: (message: unknown, content: unknown, ackOrNack: () => void) => void,
      ): this;
      on(event: 'error' | 'invalid_content', listener: (error: Error) => void): this;
    }

    interface Broker extends EventEmitter {
      publish(name: string, message: unknown): Promise<Publication>;
      subscribe(name: string): Promise<SubscriberSession>;
      shutdown(): Promise<void>;
    }
  }

  const Rascal: {
    BrokerAsPromised: { create(config: object): Promise<Rascal.Broker> };
    withDefaultConfig(config: object): object;
  };
  export = Rascal;
}
