import { TidingsError } from '../errors.js';

/** A contracts module describes something inconsistent, such as one event defined twice. */
export class ContractsError extends TidingsError {
  declare readonly code: 'contracts';
  constructor(message: string) {
    super('contracts', message);
  }
}

/** A contract snapshot is not one Tidings can read: wrong format, or damaged by hand. */
export class SnapshotFormatError extends TidingsError {
  declare readonly code: 'snapshot-format';
  constructor(
    /** Every problem found, each with its JSON path. */
    readonly problems: readonly string[],
  ) {
    super('snapshot-format', `Not a Tidings contract snapshot:\n  - ${problems.join('\n  - ')}`);
  }
}
