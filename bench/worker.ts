/**
 * A child process of the benchmark: one producer, one consumer, or one embedded-broker run, so
 * that each side's CPU is its own. The job comes as JSON in argv[2]; the orchestrator and the
 * worker then talk over IPC: the worker sends `ready`, gets `go`, sends `done` (or `trouble`),
 * and exits on `exit`, whenever it comes.
 */
import {
  type BenchConsumer,
  type BenchProducer,
  createConsumer,
  createProducer,
  type Library,
  type Settings,
} from './clients.js';
import { type EmbeddedJob, type EmbeddedResult, runEmbedded } from './embedded.js';
import type { TailStats } from './results.js';
import { type RssSample, RssSampler } from './rss.js';
import { TailRecorder } from './tail.js';

interface Common {
  readonly library: Library;
  readonly settings: Omit<Settings, 'onTrouble'>;
  /** Messages sent (or awaited) before the measured ones, to warm the JIT up; not measured. */
  readonly warmup: number;
  /** Measured messages. */
  readonly messages: number;
}

export interface ProduceJob extends Common {
  readonly kind: 'produce';
  /**
   * `batch`: publish `batch` messages, await their confirms, repeat (many in flight).
   * `each`: await each confirm before the next publish. `rate`: `rate` messages a second,
   * not waiting for confirms, each send time recorded.
   */
  readonly mode: 'batch' | 'each' | 'rate';
  readonly batch: number;
  readonly rate: number;
  readonly rssEveryMs?: number | undefined;
}

export interface ConsumeJob extends Common {
  readonly kind: 'consume';
  /** Record when each order id arrived (latency). */
  readonly times: boolean;
  readonly rssEveryMs?: number | undefined;
}

export type WorkerJob = ProduceJob | ConsumeJob | EmbeddedJob;

export interface ProduceResult {
  readonly kind: 'produce';
  /** process.hrtime (ns, a clock shared by the processes of the machine) at the first measured publish. */
  readonly t0: number;
  /** …when every measured publish was confirmed. */
  readonly t1: number;
  readonly cpuUs: number;
  /** Send time (ns) of order id i + 1 at index i; rate mode only. */
  readonly sendTimes?: number[] | undefined;
  readonly rss?: readonly RssSample[] | undefined;
  /** GC pauses and event-loop delay over the measured messages; rate mode only. */
  readonly tail?: TailStats | undefined;
}

export interface ConsumeResult {
  readonly kind: 'consume';
  /** hrtime (ns) at which the last measured order was handled. */
  readonly tLast: number;
  /** CPU from the first measured order to the last. */
  readonly cpuUs: number;
  /** Arrival time (ns) of order id i + 1 at index i. */
  readonly receiveTimes?: number[] | undefined;
  readonly rss?: readonly RssSample[] | undefined;
  /** GC pauses and event-loop delay over the measured messages; with `times` only. */
  readonly tail?: TailStats | undefined;
}

export interface EmbeddedWorkerResult extends EmbeddedResult {
  readonly kind: 'embedded';
}

export type WorkerResult = ProduceResult | ConsumeResult | EmbeddedWorkerResult;

export type WorkerMessage =
  | { readonly type: 'ready' }
  /** A consumer has handled every warm-up message: the measured ones will not queue behind them. */
  | { readonly type: 'warm' }
  | { readonly type: 'done'; readonly result: WorkerResult }
  | { readonly type: 'trouble'; readonly reason: string };

function send(message: WorkerMessage): void {
  process.send?.(message);
}

const now = () => Number(process.hrtime.bigint());
const cpuUs = (since: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(since);
  return c.user + c.system;
};

let go: () => void = () => {};
const started = new Promise<void>((resolve) => {
  go = resolve;
});
process.on('message', (m: { type: string }) => {
  if (m.type === 'go') go();
  if (m.type === 'exit') process.exit(0);
});
// The orchestrator went away: nothing to report to any more.
process.on('disconnect', () => process.exit(0));
// Run by hand (to profile it), without an orchestrator: start at once, print the result, exit.
const standalone = !process.send;
if (standalone) go();

let troubled = false;
const onTrouble = (reason: string) => {
  if (troubled) return;
  troubled = true;
  send({ type: 'trouble', reason });
};

async function produce(job: ProduceJob): Promise<ProduceResult> {
  const producer: BenchProducer = await createProducer(job.library, {
    ...job.settings,
    onTrouble,
  });
  try {
    // Warm-up orders carry ids after the measured ones, so latency can ignore them. They go in
    // batches as the measured ones do (one at a time when those do), so the JIT optimises the
    // path that is measured.
    const warmBatch = job.mode === 'each' ? 1 : job.batch;
    for (let i = 1; i <= job.warmup; ) {
      const warm: Promise<unknown>[] = [];
      for (let j = 0; j < warmBatch && i <= job.warmup; j++) {
        warm.push(producer.publish(job.messages + i++));
      }
      await Promise.all(warm);
    }
    send({ type: 'ready' });
    await started;
    const cpu0 = process.cpuUsage();
    const t0 = now();
    let sendTimes: number[] | undefined;
    let seq = 1;
    const sampler = job.rssEveryMs ? new RssSampler(job.rssEveryMs, () => seq - 1) : undefined;
    if (job.mode === 'batch') {
      while (seq <= job.messages) {
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < job.batch && seq <= job.messages; i++) {
          pending.push(producer.publish(seq++));
        }
        await Promise.all(pending);
      }
    } else if (job.mode === 'each') {
      for (; seq <= job.messages; seq++) await producer.publish(seq);
    } else {
      const tail = new TailRecorder();
      sendTimes = await atRate(producer, job);
      const t1 = now();
      return {
        kind: 'produce',
        t0,
        t1,
        cpuUs: cpuUs(cpu0),
        sendTimes,
        rss: sampler?.stop(),
        tail: tail.stop(),
      };
    }
    const t1 = now();
    return { kind: 'produce', t0, t1, cpuUs: cpuUs(cpu0), sendTimes, rss: sampler?.stop() };
  } finally {
    await producer.close().catch(() => {});
  }
}

/** Publishes `job.rate` messages a second, on a 1 ms timer, catching up on late ticks. */
async function atRate(producer: BenchProducer, job: ProduceJob): Promise<number[]> {
  const times = new Array<number>(job.messages).fill(0);
  const pending: Promise<unknown>[] = [];
  const t0 = now();
  let seq = 1;
  while (seq <= job.messages) {
    const due = Math.min(job.messages, Math.floor(((now() - t0) / 1e9) * job.rate) + 1);
    while (seq <= due) {
      times[seq - 1] = now();
      pending.push(producer.publish(seq));
      seq++;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
  return times;
}

async function consume(job: ConsumeJob): Promise<ConsumeResult> {
  const total = job.messages + job.warmup;
  const receiveTimes = job.times ? new Array<number>(job.messages).fill(0) : undefined;
  let count = 0;
  let cpu0: NodeJS.CpuUsage = process.cpuUsage();
  let sampler: RssSampler | undefined;
  let tail: TailRecorder | undefined;
  let finish: (r: ConsumeResult) => void = () => {};
  const finished = new Promise<ConsumeResult>((resolve) => {
    finish = resolve;
  });
  const onOrder = (id: number) => {
    const t = receiveTimes ? now() : 0;
    if (receiveTimes && id >= 1 && id <= job.messages && receiveTimes[id - 1] === 0) {
      receiveTimes[id - 1] = t;
    }
    count++;
    if (count === job.warmup) {
      send({ type: 'warm' });
      cpu0 = process.cpuUsage();
      if (job.rssEveryMs) sampler = new RssSampler(job.rssEveryMs, () => count - job.warmup);
      if (job.times) tail = new TailRecorder();
    }
    if (count === total) {
      finish({
        kind: 'consume',
        tLast: now(),
        cpuUs: cpuUs(cpu0),
        receiveTimes,
        rss: sampler?.stop(),
        tail: tail?.stop(),
      });
    }
  };
  if (job.warmup === 0) {
    cpu0 = process.cpuUsage();
    if (job.rssEveryMs) sampler = new RssSampler(job.rssEveryMs, () => count);
  }
  const consumer: BenchConsumer = await createConsumer(
    job.library,
    { ...job.settings, onTrouble },
    onOrder,
  );
  send({ type: 'ready' });
  try {
    return await finished;
  } finally {
    // Settle the last acks before closing (amqplib sends them asynchronously).
    await new Promise((resolve) => setTimeout(resolve, 50));
    await consumer.close().catch(() => {});
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as WorkerJob;
  let result: WorkerResult;
  if (job.kind === 'produce') result = await produce(job);
  else if (job.kind === 'consume') result = await consume(job);
  else {
    send({ type: 'ready' });
    await started;
    result = { kind: 'embedded', ...(await runEmbedded(job)) };
  }
  // The IPC channel keeps the process alive until the orchestrator says `exit`.
  send({ type: 'done', result });
  if (standalone) {
    const { rss: _rss, ...summary } = result as WorkerResult & { rss?: unknown };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.exit(0);
  }
}

main().catch((error: unknown) => {
  onTrouble(error instanceof Error ? (error.stack ?? error.message) : String(error));
  setTimeout(() => process.exit(1), 100);
});
