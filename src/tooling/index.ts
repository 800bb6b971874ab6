export { type AsyncApiDocument, type AsyncApiOptions, asyncApi } from './asyncapi.js';
export {
  type CompatibilityCode,
  type CompatibilityProblem,
  checkCompatibility,
} from './check.js';
export {
  type CollectedContracts,
  collectContracts,
  isEventDefinition,
  isExchange,
} from './contracts.js';
export { ContractsError, SnapshotFormatError } from './errors.js';
export {
  describeService,
  type Flows,
  flowsOf,
  type Publication,
  type RoutedVersion,
  type ServiceInput,
  type Subscription,
} from './flows.js';
export {
  type ConvertedSchema,
  type JsonSchema,
  type JsonSchemaConverter,
  type JsonSchemaOptions,
  type JsonSchemaTarget,
  toJsonSchema,
} from './json-schema.js';
export {
  type ContractSnapshot,
  formatSnapshot,
  parseSnapshot,
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_VERSION,
  type SnapshotEvent,
  type SnapshotExchange,
  type SnapshotVersion,
  snapshot,
} from './snapshot.js';
export { type SvgOptions, topologySvg } from './svg.js';
export {
  type TopologyFormat,
  type TopologyOptions,
  topology,
  topologyMermaid,
  topologyText,
} from './topology.js';
export { toYaml } from './yaml.js';
