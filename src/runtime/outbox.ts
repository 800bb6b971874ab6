import type { Envelope, OutgoingMessage } from '../envelope/envelope.js';

/**
 * The caller's database transaction, as `publish(event, payload, { tx })` receives it. The
 * runtime never looks inside: it hands it, untouched, to the service's {@link Outbox}. With
 * `tidings/postgres` it is the `pg` client on which the caller ran `BEGIN`.
 */
export type OutboxTransaction = object;

/** One message for an outbox to store: built, validated and encoded as a direct publish would send it. */
export interface OutboxEntry {
  /** The message exactly as the transport would publish it (exchange, routing key, body, properties). */
  readonly message: OutgoingMessage;
  /** Its envelope (the same id, type, times and correlation as the message's headers). */
  readonly envelope: Envelope;
  /**
   * Messages of one ordering key are published in the order their transactions committed;
   * `undefined` promises no order relative to other messages.
   */
  readonly orderingKey: string | undefined;
}

/**
 * Where a service writes what it publishes inside a transaction (`publish(..., { tx })`): the
 * transactional outbox. A relay publishes the committed entries later. `tidings/postgres` has
 * one: `PostgresOutbox`.
 */
export interface Outbox {
  /**
   * Stores `entry` in the transaction `tx`, so that it is published if and only if `tx` commits.
   * Resolves once the entry is written (not committed: the caller commits). Rejects when `tx` is
   * not a transaction this outbox can write to, or the database refuses the write; the caller
   * should then roll back.
   */
  write(tx: OutboxTransaction, entry: OutboxEntry): Promise<void>;
}
