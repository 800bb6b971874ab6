import type { Costs } from './costs.js';
import type { RssSample } from './rss.js';
import type { EmbeddedWorkerResult } from './worker.js';

/** The machine the figures come from. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly node: string;
  readonly rabbitmq: string;
  readonly date: string;
  /** 1, 5 and 15 minute load averages when the run began and ended. */
  readonly loadBefore: readonly number[];
  loadAfter: readonly number[];
}

/** A round that had to be run again. */
export interface Failure {
  readonly scenario: string;
  readonly variant: string;
  readonly round: number;
  readonly attempt: number;
  readonly reason: string;
}

export interface ThroughputRun {
  readonly perSecond: number;
  /** Producer process CPU per message, µs. */
  readonly producerCpuUs: number;
}

export interface E2eRun extends ThroughputRun {
  readonly consumerCpuUs: number;
}

export interface LatencyRun {
  /** Publish call to handler, ms. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly samples: number;
  readonly producerCpuUs: number;
  readonly consumerCpuUs: number;
}

export interface MemoryRun {
  readonly messages: number;
  readonly perSecond: number;
  /** The consuming process (the only one on the embedded broker). */
  readonly rss: readonly RssSample[];
  readonly producerRss: readonly RssSample[];
}

export interface Results {
  readonly machine: Machine;
  readonly rounds: number;
  seconds: number;
  readonly failures: readonly Failure[];
  costs: Costs | undefined;
  publishBatch: Record<'tidings' | 'raw' | 'raw-envelope', ThroughputRun[]> | undefined;
  publishEach: Record<'tidings' | 'raw', ThroughputRun[]> | undefined;
  e2e: Record<'tidings' | 'raw' | 'tidings-zod' | 'acm' | 'rascal', E2eRun[]> | undefined;
  latency: Record<'tidings' | 'raw-nodelay' | 'raw', LatencyRun[]> | undefined;
  embedded: Record<'arktype' | 'zod' | 'none', EmbeddedWorkerResult[]> | undefined;
  memory: { amqp: MemoryRun | undefined; embedded: MemoryRun } | undefined;
}
