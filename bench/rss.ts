/** One RSS reading during a long run. */
export interface RssSample {
  /** Messages handled when it was taken. */
  readonly messages: number;
  /** Resident set size, MB. */
  readonly rssMb: number;
  /** V8 heap in use, MB. */
  readonly heapMb: number;
}

/** Reads the process's RSS every `everyMs`, labelled with a progress count. */
export class RssSampler {
  private readonly samples: RssSample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(everyMs: number, progress: () => number) {
    const take = () => {
      const m = process.memoryUsage();
      this.samples.push({
        messages: progress(),
        rssMb: m.rss / 2 ** 20,
        heapMb: m.heapUsed / 2 ** 20,
      });
    };
    take();
    this.timer = setInterval(take, everyMs);
    this.timer.unref();
    this.take = take;
  }

  private readonly take: () => void;

  /** Takes a last sample and returns them all. */
  stop(): RssSample[] {
    clearInterval(this.timer);
    this.take();
    return this.samples;
  }
}
