import type { Table } from '../pg-table.js';

/**
 * The outbox table's columns. A row is one message: written by `PostgresOutbox.write` in the
 * caller's transaction, published by a relay, then marked sent (and deleted after the retention).
 */
export const OUTBOX_COLUMNS = `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ordering_key text,
  exchange text NOT NULL,
  routing_key text NOT NULL,
  message_id text NOT NULL,
  properties jsonb NOT NULL,
  body bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  last_attempt_at timestamptz,
  next_attempt_at timestamptz,
  sent_at timestamptz,
  failed_at timestamptz,
  expires_at timestamptz`;

/** Every column a relay reads or writes: what the schema check selects. */
export const OUTBOX_COLUMN_NAMES = OUTBOX_COLUMNS.split('\n').map(
  (line) => line.trim().split(' ')[0]!,
);

/** The row of a pending message: committed, neither sent nor parked. */
export const PENDING = 'sent_at IS NULL AND failed_at IS NULL';

/** The notification channel of an outbox table: its name as given. */
export function channelOf(table: Table): string {
  return table.plain;
}

/**
 * Indexes after the table and its `expires_at` index: pending rows by id (the relay's scan),
 * pending rows by ordering key and id (to find the oldest pending row of a key), parked rows
 * (for `status` and `retry`). With `notify`, also a statement trigger that notifies the table's
 * channel: PostgreSQL delivers it at commit, only on commit, one per transaction; but a
 * transaction that notifies holds a global lock from its commit until the commit is on disk, so
 * such transactions commit one at a time (docs/outbox.md, "Waking the relay").
 */
export function outboxExtras(table: Table, notify: boolean): string {
  const t = table.sql;
  const statements = [
    `CREATE INDEX IF NOT EXISTS ${table.bare('pending_idx')} ON ${t} (id) WHERE ${PENDING};`,
    `CREATE INDEX IF NOT EXISTS ${table.bare('key_idx')} ON ${t} (ordering_key, id) WHERE ${PENDING} AND ordering_key IS NOT NULL;`,
    `CREATE INDEX IF NOT EXISTS ${table.bare('failed_idx')} ON ${t} (id) WHERE failed_at IS NOT NULL;`,
  ];
  if (notify) {
    const fn = table.related('notify');
    const channel = channelOf(table).replaceAll("'", "''");
    statements.push(
      `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $tidings$
BEGIN
  PERFORM pg_notify('${channel}', '');
  RETURN NULL;
END
$tidings$;`,
      `DROP TRIGGER IF EXISTS ${NOTIFY_TRIGGER(table)} ON ${t};`,
      `CREATE TRIGGER ${NOTIFY_TRIGGER(table)} AFTER INSERT ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();`,
    );
  }
  statements.push(
    `COMMENT ON TABLE ${t} IS 'Tidings transactional outbox, schema 1 (docs/outbox.md)';`,
  );
  return statements.join('\n');
}

/** The quoted name of the notify trigger of an outbox table. */
export const NOTIFY_TRIGGER = (table: Table) => table.bare('notify');
