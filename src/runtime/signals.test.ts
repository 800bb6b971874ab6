import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { stopOnSignals } from './signals.js';

describe('stopOnSignals', () => {
  it('stops once on the first signal and removes its handlers when asked', async () => {
    let stops = 0;
    const remove = stopOnSignals(
      async () => {
        stops++;
      },
      { logger: silentLogger, signals: ['SIGUSR2'] },
    );
    process.emit('SIGUSR2', 'SIGUSR2');
    await new Promise((r) => setImmediate(r));
    expect(stops).toBe(1);
    remove();
    expect(process.listenerCount('SIGUSR2')).toBe(0);
  });

  it('sets a failing exit code when stopping fails', async () => {
    const before = process.exitCode;
    const remove = stopOnSignals(
      async () => {
        throw new Error('stuck');
      },
      { logger: silentLogger, signals: ['SIGUSR2'] },
    );
    process.emit('SIGUSR2', 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 10));
    expect(process.exitCode).toBe(1);
    process.exitCode = before;
    remove();
  });
});
