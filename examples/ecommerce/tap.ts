import type {
  ConsumeOptions,
  Consumer,
  Delivery,
  OutgoingMessage,
  PublishOutcome,
  Topology,
  Transport,
} from 'tidings';

/**
 * A transport that forwards everything to another one and keeps the payload of every message
 * published through it, by message id. The demo uses it to print what each event says: the
 * services' `published` and `handled` notifications carry the envelope, not the payload.
 * It keeps every payload for its whole life: fine for a demo or a test, not for production.
 */
export class PayloadTap implements Transport {
  readonly kind: string;
  private readonly payloads = new Map<string, unknown>();

  constructor(private readonly inner: Transport) {
    this.kind = inner.kind;
  }

  /** The payload of the message with this id, as it went on the wire; `undefined` if unseen. */
  payloadOf(messageId: string): unknown {
    return this.payloads.get(messageId);
  }

  publish(message: OutgoingMessage): Promise<PublishOutcome> {
    const id = message.properties.messageId;
    if (id !== undefined) this.payloads.set(id, JSON.parse(message.body.toString('utf8')));
    return this.inner.publish(message);
  }

  declare(topology: Topology): Promise<void> {
    return this.inner.declare(topology);
  }

  consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Consumer> {
    return this.inner.consume(queue, options, onDelivery);
  }

  deleteTopology(topology: Topology, options?: { exchanges?: boolean }): Promise<void> {
    return this.inner.deleteTopology(topology, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
