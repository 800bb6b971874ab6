import { createService, MemoryBroker } from '../src/index.js';
import { order, type SchemaLibrary, submitEvent } from './payload.js';
import { type RssSample, RssSampler } from './rss.js';

/** Events handled before the clock starts, in the measured loop, by Tidings and its floors alike. */
const WARMUP_EVENTS = 20_000;

/** One run on the embedded broker: a publishing and a handling service in one process. */
export interface EmbeddedJob {
  readonly kind: 'embedded';
  readonly messages: number;
  readonly library: SchemaLibrary;
  /**
   * Run the floor instead of Tidings: per event one `JSON.stringify`, one `JSON.parse` and the
   * schema's validation on both sides (none with `library: 'none'`), nothing else, in the same
   * loop shape (the same window of serialised events held at once).
   */
  readonly floor?: boolean | undefined;
  /** Published but not yet handled, at most (the producer waits for the handler beyond it). */
  readonly window: number;
  readonly prefetch: number;
  /** Sample the RSS every this many ms (the memory scenario). */
  readonly rssEveryMs?: number | undefined;
}

export interface EmbeddedResult {
  readonly perSecond: number;
  /** Process CPU (user + system) per event, µs. */
  readonly cpuUsPerMessage: number;
  readonly rss: readonly RssSample[];
}

/**
 * Publishes `messages` orders through `service.publish` (validated) to a handler on another
 * service (validated again, then acknowledged), on one embedded broker, keeping at most `window`
 * published and not yet handled.
 */
export async function runEmbedded(job: EmbeddedJob): Promise<EmbeddedResult> {
  if (job.floor) return runFloor(job);
  const broker = new MemoryBroker();
  const event = submitEvent('benchmem', job.library);
  const consumer = createService({
    name: 'consumer',
    transport: broker.transport(),
    prefetch: job.prefetch,
  });
  const producer = createService({ name: 'producer', transport: broker.transport() });
  let handled = 0;
  let sent = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const low = job.window >> 1;
  consumer.on(event, () => {
    handled++;
    if (wake && (sent - handled <= low || handled === target)) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  await consumer.start();
  // Payloads are made beforehand: the figure is the framework's, not the building of objects.
  const payloads = Array.from({ length: 1024 }, (_, i) => order(i + 1));
  const onError = (error: unknown) => {
    failure ??= error;
  };
  let target = 0;
  /** Publishes `count` events, keeping at most `window` published and not yet handled. */
  const pump = async (count: number) => {
    target = count;
    while (handled < count) {
      while (sent < count && sent - handled < job.window) {
        producer.publish(event, payloads[sent & 1023]).catch(onError);
        sent++;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      if (failure) throw failure;
    }
  };
  // Warm-up, so the JIT has compiled the path before the clock starts: the same loop as measured.
  await pump(WARMUP_EVENTS);
  handled = 0;
  sent = 0;

  const sampler = job.rssEveryMs ? new RssSampler(job.rssEveryMs, () => handled) : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pump(job.messages);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const rss = sampler?.stop() ?? [];
  await consumer.stop();
  await producer.stop();
  return {
    perSecond: job.messages / seconds,
    cpuUsPerMessage: (cpu.user + cpu.system) / job.messages,
    rss,
  };
}

/**
 * The floor of {@link runEmbedded}: what any in-process delivery with serialisation and validation
 * on both sides must do per event, and no more. Events are serialised a window at a time and held
 * (as a broker holds them) before they are parsed and validated, so that the garbage collector
 * sees the same number of live events as in the Tidings run.
 */
async function runFloor(job: EmbeddedJob): Promise<EmbeddedResult> {
  const spec = submitEvent('benchfloor', job.library).versions[1]!.schema['~standard'];
  const validate =
    job.library === 'none'
      ? (value: unknown) => value
      : (value: unknown) => {
          const r = spec.validate(value) as { value?: unknown; issues?: unknown };
          if (r.issues) throw new Error('invalid order');
          return r.value;
        };
  const payloads = Array.from({ length: 1024 }, (_, i) => order(i + 1));
  const held: Buffer[] = new Array(job.window);
  let sink = 0;
  const run = (n: number) => {
    for (let done = 0; done < n; ) {
      const batch = Math.min(job.window, n - done);
      for (let i = 0; i < batch; i++) {
        held[i] = Buffer.from(JSON.stringify(validate(payloads[(done + i) & 1023])));
      }
      for (let i = 0; i < batch; i++) {
        sink += (validate(JSON.parse(held[i]!.toString('utf8'))) as { id: number }).id;
      }
      done += batch;
    }
  };
  run(WARMUP_EVENTS);
  const sampler = job.rssEveryMs ? new RssSampler(job.rssEveryMs, () => 0) : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  run(job.messages);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (sink === 0) throw new Error('the floor handled nothing');
  return {
    perSecond: job.messages / seconds,
    cpuUsPerMessage: (cpu.user + cpu.system) / job.messages,
    rss: sampler?.stop() ?? [],
  };
}
