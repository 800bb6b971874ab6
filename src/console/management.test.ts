import { describe, expect, it } from 'vitest';
import { managementTarget } from './management.js';

/* The console's numbers read from a live management API are in management.chaos.test.ts. */

describe('the management API target', () => {
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('is derived from an amqp:// broker URL: same host, port 15672, same credentials and vhost', () => {
    expect(managementTarget('amqp://ann:p%40ss@rabbit.local:5672/shop', undefined)).toEqual({
      baseUrl: 'http://rabbit.local:15672',
      vhost: 'shop',
      authorization: basic('ann', 'p@ss'),
    });
    expect(managementTarget('amqps://[::1]/', undefined)).toMatchObject({
      baseUrl: 'http://[::1]:15672',
      vhost: '/',
      authorization: basic('guest', 'guest'),
    });
  });

  it('can be given, or turned off, and is absent for other brokers', () => {
    expect(
      managementTarget('amqp://a:b@h/%2Fprod', 'https://ops:pw@mq.example:8443/rabbitmq/'),
    ).toEqual({
      baseUrl: 'https://mq.example:8443/rabbitmq',
      vhost: '/prod',
      authorization: basic('ops', 'pw'),
    });
    expect(managementTarget('amqp://a:b@h/', false)).toBeUndefined();
    expect(managementTarget('memory://demo', undefined)).toBeUndefined();
    expect(managementTarget(undefined, undefined)).toBeUndefined();
    expect(() => managementTarget(undefined, 'ftp://x')).toThrow(/http:\/\/ or https:\/\//);
  });
});
