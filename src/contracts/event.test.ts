import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidNameError } from '../errors.js';
import { defineEvent, defineExchange, parseRoutingKey } from './event.js';

const Order = z.object({ id: z.number() });

describe('defineExchange and defineEvent', () => {
  it('builds routing keys <exchange>.v<N>.<event>', () => {
    const submit = defineEvent(defineExchange('order'), 'submit', Order);
    expect(submit.routingKey()).toBe('order.v1.submit');
    expect(submit.latest).toBe(1);
    const v2 = submit.version(Order.extend({ currency: z.string() }), (v1) => ({
      ...v1,
      currency: 'EUR',
    }));
    expect(v2.routingKey()).toBe('order.v2.submit');
    expect(v2.routingKey(1)).toBe('order.v1.submit');
    expect(v2.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(submit.latest).toBe(1);
    expect(() => v2.routingKey(3)).toThrow(/versions 1..2; there is no version 3/);
  });

  const bad: [string, RegExp][] = [
    ['', /must not be empty/],
    ['Order', /must be lowercase/],
    ['order.submit', /must not contain "\."/],
    ['order*', /wildcards/],
    ['order#', /wildcards/],
    ['or der', /whitespace/],
    ['order\t', /whitespace/],
    ['ordér', /may only contain/],
    ['x'.repeat(256), /longer than 255 bytes/],
  ];
  it.each(bad)('rejects the exchange name %j', (name, why) => {
    const error = (() => {
      try {
        defineExchange(name);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidNameError);
    expect((error as InvalidNameError).message).toMatch(why);
    expect((error as InvalidNameError).kind).toBe('exchange');
    expect((error as InvalidNameError).value).toBe(name);
  });

  it.each(bad)('rejects the event name %j', (name, why) => {
    expect(() => defineEvent(defineExchange('order'), name, Order)).toThrow(why);
  });

  it('rejects names whose routing key would exceed 255 bytes', () => {
    const exchange = defineExchange('e'.repeat(200));
    expect(() => defineEvent(exchange, 'n'.repeat(50), Order)).toThrow(
      /longer than AMQP's limit of 255/,
    );
    expect(() => defineEvent(exchange, 'n'.repeat(40), Order)).not.toThrow();
  });

  it('rejects a schema that is not a Standard Schema', () => {
    expect(() => defineEvent(defineExchange('order'), 'submit', {} as never)).toThrow(
      /Standard Schema/,
    );
  });

  it('parses routing keys back into their parts', () => {
    expect(parseRoutingKey('order.v12.submit')).toEqual({
      exchange: 'order',
      version: 12,
      event: 'submit',
    });
    expect(parseRoutingKey('order.v0.submit')).toBeUndefined();
    expect(parseRoutingKey('order.submit')).toBeUndefined();
    expect(parseRoutingKey('order.v1.sub.mit')).toBeUndefined();
  });
});
