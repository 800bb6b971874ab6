export type { Outbox, OutboxEntry, OutboxTransaction } from '../../runtime/outbox.js';
export { OutboxError, OutboxSchemaError } from './errors.js';
export {
  type OutboxMigrationOptions,
  type OutboxRow,
  type OutboxRowState,
  type OutboxSchema,
  type OutboxStatus,
  POSTGRES_OUTBOX_TABLE,
  PostgresOutbox,
  type PostgresOutboxOptions,
} from './outbox.js';
export {
  type OutboxBackoff,
  OutboxRelay,
  type OutboxRelayEvents,
  type OutboxRelayOptions,
  type OutboxRelayStats,
} from './relay.js';
