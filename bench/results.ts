import type { Costs } from './costs.js';
import type { OutboxBenchResult } from './outbox.js';
import type { PartitionBenchResult } from './partitions.js';
import type { RssSample } from './rss.js';
import type { TracingResult } from './tracing.js';
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
  /** Git commit of the code measured (`git rev-parse --short HEAD`), and whether it had changes. */
  readonly commit?: string | undefined;
}

/** The 1-minute load average before a run starts must be below this for the run to count. */
export const QUIET_LOAD = 1.0;

/**
 * Other work on the machine before a scenario, measured while the benchmark itself is idle (no
 * worker running): the cores busy, from /proc/stat over one second. The 1-minute load average
 * cannot say this once a run has begun: the run's own previous scenario keeps it high for minutes.
 */
export const QUIET_BUSY_CORES = 0.3;

/** The load around one scenario (all its rounds). */
export interface ScenarioLoad {
  readonly before: readonly number[];
  readonly after: readonly number[];
  /** Cores busy with other work just before the scenario (see {@link QUIET_BUSY_CORES}). */
  readonly busyBefore?: number | undefined;
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

/** Where a process's time went during a latency run: the suspects of the tail, measured. */
export interface TailStats {
  /** Garbage collections: how many, their total and longest pause, ms. */
  readonly gcCount: number;
  readonly gcTotalMs: number;
  readonly gcMaxMs: number;
  /** Event-loop delay (`monitorEventLoopDelay`, 1 ms resolution timer): p50, p99, max, ms. */
  readonly loopP50Ms: number;
  readonly loopP99Ms: number;
  readonly loopMaxMs: number;
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
  readonly producerTail?: TailStats | undefined;
  readonly consumerTail?: TailStats | undefined;
}

export interface MemoryRun {
  readonly messages: number;
  readonly perSecond: number;
  /** The consuming process (the only one on the embedded broker). */
  readonly rss: readonly RssSample[];
  readonly producerRss: readonly RssSample[];
}

/** Variants of the embedded scenario: Tidings with each schema library, and the floors. */
export type EmbeddedVariant = 'arktype' | 'zod' | 'none' | 'floor-arktype' | 'floor-json';

export interface Results {
  /** 2 since the floors and loads were added; absent in the results of older runs. */
  readonly format?: number | undefined;
  readonly machine: Machine;
  /** Load before and after each scenario, by scenario key. */
  readonly loads?: Record<string, ScenarioLoad> | undefined;
  /** Keys of the scenarios run (all of them in a full run). */
  readonly scenarios?: readonly string[] | undefined;
  readonly rounds: number;
  seconds: number;
  readonly failures: readonly Failure[];
  costs: Costs | undefined;
  publishBatch:
    | Record<'tidings' | 'raw' | 'raw-envelope' | 'raw-envelope-v1', ThroughputRun[]>
    | undefined;
  publishEach: Record<'tidings' | 'raw', ThroughputRun[]> | undefined;
  e2e: Record<'tidings' | 'raw' | 'tidings-zod' | 'acm' | 'rascal', E2eRun[]> | undefined;
  latency: Record<'tidings' | 'raw-nodelay' | 'raw', LatencyRun[]> | undefined;
  embedded: Record<EmbeddedVariant, EmbeddedWorkerResult[]> | undefined;
  memory: { amqp: MemoryRun | undefined; embedded: MemoryRun } | undefined;
  /** Publishing through the transactional outbox beside a direct publish (bench/outbox.ts). */
  outbox?: OutboxBenchResult | undefined;
  /** The cost of tracing, with and without a tracer registered (bench/tracing.ts). */
  tracing?: TracingResult | undefined;
  /** One queue beside 1, 2 and 4 partitions (bench/partitions.ts). */
  partitions?: PartitionBenchResult | undefined;
}
