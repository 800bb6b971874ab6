import { describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from './contracts/event.js';
import { StateError } from './errors.js';
import { silentLogger } from './logger.js';
import { runService } from './run.js';
import { createService } from './runtime/service.js';
import { testOrderSchema } from './testing/schema.js';

const ticks = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('runService', () => {
  it('connects, starts the app, and on a signal stops it before closing the transport', async () => {
    const order = defineEvent(defineExchange('run-test'), 'submit', testOrderSchema);
    const steps: string[] = [];
    const handled: number[] = [];
    const running = await runService({
      name: 'billing',
      brokerUrl: 'memory://run-test',
      logger: silentLogger,
      signals: ['SIGUSR2'],
      start: async (transport) => {
        const service = createService({ name: 'billing', transport, logger: silentLogger });
        service.on(order, (o) => {
          handled.push(o.id);
        });
        await service.start();
        steps.push('started');
        return {
          service,
          stop: async () => {
            steps.push('stopping');
            await service.stop();
          },
        };
      },
    });
    await running.app.service.publish(order, { id: 7, lines: [] });
    await ticks();
    expect(handled).toEqual([7]);

    process.emit('SIGUSR2', 'SIGUSR2');
    await ticks();
    expect(steps).toEqual(['started', 'stopping']);
    // Stopped, and its transport closed: publishing through either is refused.
    await expect(running.app.service.publish(order, { id: 8, lines: [] })).rejects.toBeInstanceOf(
      StateError,
    );
    await expect(
      running.transport.publish({
        exchange: 'run-test',
        routingKey: 'run-test.v1.submit',
        body: Buffer.from('{}'),
        properties: { headers: {} },
      }),
    ).rejects.toThrow('The memory transport is closed');
    expect(process.listenerCount('SIGUSR2')).toBe(0);
    await running.stop(); // a second stop is the first one's promise
    expect(steps).toEqual(['started', 'stopping']);
  });

  it('closes the transport and rejects when the app fails to start', async () => {
    let closed = false;
    await expect(
      runService({
        name: 'broken',
        brokerUrl: 'memory://run-test-broken',
        logger: silentLogger,
        signals: ['SIGUSR2'],
        start: async (transport) => {
          const close = transport.close.bind(transport);
          transport.close = async () => {
            closed = true;
            await close();
          };
          throw new Error('no database');
        },
      }),
    ).rejects.toThrow('no database');
    expect(closed).toBe(true);
    expect(process.listenerCount('SIGUSR2')).toBe(0);
  });

  it('waits for a start in progress when a signal comes, then stops what it started', async () => {
    const steps: string[] = [];
    let release: () => void = () => {};
    const running = runService({
      name: 'slow',
      brokerUrl: 'memory://run-test-slow',
      logger: silentLogger,
      signals: ['SIGUSR2'],
      start: async () => {
        steps.push('starting');
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        steps.push('started');
        return { stop: async () => void steps.push('stopped') };
      },
    });
    await ticks();
    process.emit('SIGUSR2', 'SIGUSR2');
    await ticks();
    expect(steps).toEqual(['starting']);
    release();
    await (await running).stop();
    expect(steps).toEqual(['starting', 'started', 'stopped']);
    expect(process.listenerCount('SIGUSR2')).toBe(0);
  });
});
