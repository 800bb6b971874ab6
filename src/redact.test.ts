import { describe, expect, it } from 'vitest';
import { redactSecrets, redactUrl } from './redact.js';

describe('redacting broker URLs', () => {
  it('hides a NATS password and a NATS token, and an AMQP password only', () => {
    expect(redactUrl('nats://app:s3cret@nats:4222')).toBe('nats://app:***@nats:4222');
    expect(redactUrl('nats://t0ken@nats:4222?namespace=shop')).toBe(
      'nats://***@nats:4222?namespace=shop',
    );
    expect(redactUrl('amqp://guest@host/')).toBe('amqp://guest@host/');
    expect(redactUrl('nats://t0ken@[bad')).toBe('nats://***@[bad');
  });

  it('hides them inside any text', () => {
    const text = 'lost nats://t0ken@a:4222 and nats://u:p4ss@b:4222, then amqp://guest@c/';
    const safe = redactSecrets(text);
    expect(safe).not.toMatch(/t0ken|p4ss/);
    expect(safe).toBe('lost nats://***@a:4222 and nats://u:***@b:4222, then amqp://guest@c/');
  });
});
