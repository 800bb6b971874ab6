import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import type { ServiceDescription } from '../runtime/service.js';
import { canRun } from '../testing/broker.js';
import { flowsOf } from './flows.js';
import { topologySvg } from './svg.js';
import { topology } from './topology.js';

const order = defineExchange('order');
const logistic = defineExchange('logistic');
const Order = z.object({ id: z.number() });
const submit = defineEvent(order, 'submit', Order).version(
  Order.extend({ currency: z.string() }),
  (o) => ({ ...o, currency: 'EUR' }),
);
const chargeback = defineEvent(order, 'chargeback', Order);
const dispatched = defineEvent(logistic, 'dispatched', Order);

function handler(
  queue: string,
  events: ServiceDescription['handlers'][number]['events'],
  bindings: ServiceDescription['handlers'][number]['bindings'],
) {
  return { name: queue, queue, events, bindings };
}

/** The example's shape: order and logistic publish; billing, logistic, notification and order consume. */
const services: ServiceDescription[] = [
  {
    name: 'order',
    publishes: [submit, chargeback],
    handlers: [
      handler(
        'order.logistic.dispatched',
        [{ event: dispatched, version: 1 }],
        [{ exchange: 'logistic', pattern: 'logistic.*.dispatched' }],
      ),
    ],
  },
  {
    name: 'billing',
    publishes: [],
    handlers: [
      handler(
        'billing.order.submit',
        [{ event: submit, version: 2 }],
        [{ exchange: 'order', pattern: 'order.*.submit' }],
      ),
      handler(
        'billing.order.chargeback',
        [{ event: chargeback, version: 1 }],
        [{ exchange: 'order', pattern: 'order.*.chargeback' }],
      ),
    ],
  },
  {
    name: 'logistic',
    publishes: [dispatched],
    handlers: [
      handler(
        'logistic.order.submit',
        [{ event: submit, version: 1 }],
        [{ exchange: 'order', pattern: 'order.*.submit' }],
      ),
    ],
  },
  {
    name: 'notification',
    publishes: [],
    handlers: [
      handler(
        'notification.all',
        [
          { event: submit, version: 2 },
          { event: dispatched, version: 1 },
        ],
        [
          { exchange: 'order', pattern: 'order.#' },
          { exchange: 'logistic', pattern: 'logistic.*.dispatched' },
        ],
      ),
    ],
  },
];

describe('flowsOf', () => {
  it('works out what each binding routes, and what its handler accepts', () => {
    const flows = flowsOf(services);
    expect(flows.services).toEqual(['billing', 'logistic', 'notification', 'order']);
    expect(flows.exchanges).toEqual(['logistic', 'order']);
    const keys = (queue: string, what: 'routed' | 'accepted') =>
      flows.subscriptions
        .filter((s) => s.queue === queue)
        .flatMap((s) => s[what].map((v) => v.routingKey));
    expect(keys('logistic.order.submit', 'routed')).toEqual(['order.v1.submit', 'order.v2.submit']);
    expect(keys('logistic.order.submit', 'accepted')).toEqual(['order.v1.submit']);
    // order.# also routes chargebacks, which the handler does not take.
    expect(keys('notification.all', 'routed')).toContain('order.v1.chargeback');
    expect(keys('notification.all', 'accepted')).not.toContain('order.v1.chargeback');
  });
});

describe('topology as text', () => {
  const text = topology(services);

  it('lists each routing key with its publishers and consumers', () => {
    expect(text).toContain(
      [
        '  order.v2.submit',
        '    published by  order',
        '    consumed by   billing  (queue billing.order.submit, binding order.*.submit)',
        '                  notification  (queue notification.all, binding order.#)',
        '    dead-lettered logistic  (queue logistic.order.submit, binding order.*.submit: ' +
          'unsupported-version: the handler reads up to v1)',
      ].join('\n'),
    );
    expect(text).toContain('    published by  (nobody declares it)');
    expect(text).toContain(
      'billing  (queue billing.order.submit, binding order.*.submit, upcast to v2)',
    );
    expect(text).toContain('notification  (queue notification.all, binding order.#: unknown-event');
  });

  it("lists each service's side", () => {
    expect(text).toContain('service order\n  publishes  order.v1.chargeback, order.v2.submit\n');
    expect(text).toMatch(
      /service logistic\n {2}publishes {2}logistic\.v1\.dispatched\n {2}queue {6}logistic\.order\.submit {2}bound to order by order\.\*\.submit {2}accepts order\.v1\.submit\n/,
    );
  });

  it('says so when there is nothing to show', () => {
    expect(topology([])).toBe('no services\n');
  });
});

describe('topology as Mermaid', () => {
  const mermaid = topology(services, { format: 'mermaid' });

  it('is a flowchart of services, exchanges and queues', () => {
    expect(mermaid.startsWith('flowchart LR\n')).toBe(true);
    expect(mermaid).toContain('  s_order(["order"])');
    expect(mermaid).toContain('  e_order{{"exchange order"}}');
    expect(mermaid).toContain('  q_notification_all[("notification.all")]');
    expect(mermaid).toContain('  s_order -->|"order.v2.submit"| e_order');
    expect(mermaid).toContain('  q_notification_all -.-> s_notification');
  });

  it('escapes # in labels, which Mermaid reads as the start of an entity', () => {
    expect(mermaid).toContain('  e_order -->|"order.#35;"| q_notification_all');
  });
});

describe('topology as SVG', () => {
  const svg = topology(services, { format: 'svg', title: 'E-commerce <example>' });

  it('is well-formed XML', () => {
    expect(() => assertWellFormedXml(svg)).not.toThrow();
    expect(svg).toContain('<title>E-commerce &lt;example&gt;</title>');
  });

  it('shows every service, exchange, queue, routing key and pattern', () => {
    const texts = textsOf(svg);
    for (const name of ['order', 'billing', 'logistic', 'notification'])
      expect(texts).toContain(name);
    for (const queue of ['billing.order.submit', 'notification.all', 'order.logistic.dispatched']) {
      expect(texts).toContain(queue);
    }
    for (const label of [
      'order.v2.submit',
      'logistic.v1.dispatched',
      'order.*.submit',
      'order.#',
    ]) {
      expect(texts).toContain(label);
    }
    expect(texts).toContain('v1; v2 to DLQ');
  });

  it.each([
    ['<svg><g></svg>'],
    ['<svg a="1" a="2"/>'],
    ['<svg>a & b</svg>'],
    ['<svg x=1/>'],
    ['<svg/><svg/>'],
  ])('(the XML check itself rejects %s)', (bad) => {
    expect(() => assertWellFormedXml(bad)).toThrow();
  });

  it('marks services, exchanges and queues for a live view only when asked', () => {
    const live = topologySvg(flowsOf(services), { live: true });
    expect(() => assertWellFormedXml(live)).not.toThrow();
    for (const name of ['order', 'billing', 'logistic', 'notification']) {
      expect(live).toContain(`data-service="${name}"`);
    }
    expect(live).toContain('data-exchange="order"');
    expect(live).toContain('data-queue="billing.order.submit"');
    expect(live).toContain('data-stats-queue="billing.order.submit"></text>');
    expect(live).toContain('data-stats-exchange="logistic"></text>');
    // The column for the numbers widens the picture; the default picture has no data attributes.
    const width = (text: string) => Number(/<svg [^>]*width="(\d+)"/.exec(text)?.[1]);
    expect(width(live)).toBeGreaterThan(width(topology(services, { format: 'svg' })));
    expect(topology(services, { format: 'svg' })).not.toContain('data-');
  });

  it('has an empty picture for no services', () => {
    expect(() => assertWellFormedXml(topology([], { format: 'svg' }))).not.toThrow();
  });

  const rsvg = canRun(
    hasRsvg(),
    'rendering the topology to PNG',
    'rsvg-convert is not installed (Debian: librsvg2-bin)',
  );
  it.skipIf(!rsvg)('renders to PNG with rsvg-convert', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidings-svg-'));
    writeFileSync(join(dir, 'topology.svg'), svg);
    execFileSync('rsvg-convert', ['-o', join(dir, 'topology.png'), join(dir, 'topology.svg')]);
    const png = readFileSync(join(dir, 'topology.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // Width and height from the IHDR chunk: the picture has the size the SVG declares.
    expect(png.readUInt32BE(16)).toBe(Number(/width="(\d+)"/.exec(svg)![1]));
  });
});

function hasRsvg(): boolean {
  try {
    execFileSync('rsvg-convert', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function textsOf(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => unescapeXml(m[1]!));
}

function unescapeXml(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(\w+);/g, (_, name: string) => named[name] ?? `&${name};`);
}

const TOKEN =
  /<!--[\s\S]*?-->|<\/([A-Za-z_][\w:.-]*)\s*>|<([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)|(<)/g;
const ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9A-Fa-f]+);)/;

/** A small XML well-formedness check: balanced tags, quoted attributes, valid entities, one root. */
function assertWellFormedXml(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const open: string[] = [];
  let roots = 0;
  for (const m of body.matchAll(TOKEN)) {
    const [, close, tag, attributes, selfClosing, text, stray] = m;
    if (stray) throw new Error(`stray "<" at ${m.index}`);
    if (text !== undefined) {
      if (ENTITY.test(text)) throw new Error(`bad entity in text at ${m.index}`);
      if (open.length === 0 && text.trim() !== '') throw new Error('text outside the root');
    } else if (close) {
      if (open.pop() !== close) throw new Error(`unbalanced </${close}> at ${m.index}`);
    } else if (tag) {
      checkAttributes(attributes ?? '', m.index);
      if (open.length === 0) roots++;
      if (!selfClosing) open.push(tag);
    }
  }
  if (open.length > 0) throw new Error(`unclosed <${open.at(-1)}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

function checkAttributes(attributes: string, at: number): void {
  const names = new Set<string>();
  for (const [, name, value] of attributes.matchAll(
    /([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g,
  )) {
    if (names.has(name!)) throw new Error(`duplicate attribute ${name} at ${at}`);
    names.add(name!);
    if (ENTITY.test(value ?? '')) throw new Error(`bad entity in ${name} at ${at}`);
  }
}
