import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { TailStats } from './results.js';

/**
 * Records, in one process, two suspects of a latency tail while a latency run lasts: garbage
 * collection pauses (from `gc` performance entries) and event-loop delay (how late a 1 ms timer
 * fires: anything that holds the thread, including the machine's scheduling of the process).
 */
export class TailRecorder {
  private readonly pauses: number[] = [];
  private readonly observer: PerformanceObserver;
  private readonly loop = monitorEventLoopDelay({ resolution: 1 });

  constructor() {
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) this.pauses.push(entry.duration);
    });
    this.observer.observe({ entryTypes: ['gc'] });
    this.loop.enable();
  }

  stop(): TailStats {
    this.observer.disconnect();
    this.loop.disable();
    const ms = (ns: number) => ns / 1e6;
    return {
      gcCount: this.pauses.length,
      gcTotalMs: this.pauses.reduce((a, b) => a + b, 0),
      gcMaxMs: this.pauses.reduce((a, b) => Math.max(a, b), 0),
      loopP50Ms: ms(this.loop.percentile(50)),
      loopP99Ms: ms(this.loop.percentile(99)),
      loopMaxMs: ms(this.loop.max),
    };
  }
}
