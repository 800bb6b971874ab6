export { type ManagementTarget, managementTarget } from './management.js';
export type { ConsoleEvent, ConsoleModel, ConsoleQueue } from './model.js';
export { type BodyPreview, previewBody } from './preview.js';
export {
  brokerLabel,
  type ConsoleOptions,
  type RunningConsole,
  startConsole,
  TOKEN_HEADER,
} from './server.js';
export type { OtherQueue, QueueSample, StatsSnapshot, StatsSource } from './stats.js';
export type { TailFilter, TailMessage } from './tail.js';
