import type { Counter, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';
import { DURATION_BUCKETS, LAG_BUCKETS, METRICS } from './semconv.js';

/** The instruments of one meter (see `METRICS` for what each counts). */
export class Instruments {
  readonly sent: Counter;
  readonly consumed: Counter;
  readonly operationDuration: Histogram;
  readonly processDuration: Histogram;
  readonly acked: Counter;
  readonly retried: Counter;
  readonly deadLettered: Counter;
  readonly lag: Histogram;
  readonly queueDepth: ObservableGauge;

  constructor(meter: Meter) {
    const messages = { unit: '{message}' };
    this.sent = meter.createCounter(METRICS.sent, {
      ...messages,
      description: 'Messages a service sent (published), including those the broker refused.',
    });
    this.consumed = meter.createCounter(METRICS.consumed, {
      ...messages,
      description: 'Messages delivered to a handler.',
    });
    this.operationDuration = meter.createHistogram(METRICS.operationDuration, {
      unit: 's',
      description: 'Duration of a send until the broker confirmed it.',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.processDuration = meter.createHistogram(METRICS.processDuration, {
      unit: 's',
      description: 'How long handlers ran.',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.acked = meter.createCounter(METRICS.acked, {
      ...messages,
      description: 'Messages handled and acknowledged.',
    });
    this.retried = meter.createCounter(METRICS.retried, {
      ...messages,
      description: 'Messages parked on a retry queue for another attempt.',
    });
    this.deadLettered = meter.createCounter(METRICS.deadLettered, {
      ...messages,
      description: 'Messages moved to a dead-letter queue.',
    });
    this.lag = meter.createHistogram(METRICS.lag, {
      unit: 's',
      description: 'Time from when a message was first published to the start of its processing.',
      advice: { explicitBucketBoundaries: LAG_BUCKETS },
    });
    this.queueDepth = meter.createObservableGauge(METRICS.queueDepth, {
      ...messages,
      description: 'Messages ready in a queue, waiting for a consumer.',
    });
  }
}
