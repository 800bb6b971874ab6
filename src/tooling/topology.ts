import { eventKey } from './contracts.js';
import {
  conversion,
  type Flows,
  flowsOf,
  queueLabel,
  type RoutedVersion,
  type ServiceInput,
  type Subscription,
} from './flows.js';
import { topologySvg } from './svg.js';

/** The formats {@link topology} writes. */
export type TopologyFormat = 'text' | 'mermaid' | 'svg';

/** Options of {@link topology}. */
export interface TopologyOptions {
  /** @defaultValue 'text' */
  readonly format?: TopologyFormat;
  /** A heading for the SVG picture. @defaultValue 'Tidings topology' */
  readonly title?: string;
}

/**
 * Who publishes and who consumes what, from services (or their `describe()`):
 *
 * - `text`: for each exchange and routing key, its publishers, the queues that receive and accept
 *   it, and those where it would be dead-lettered; then each service's side;
 * - `mermaid`: a Mermaid flowchart, service -> exchange -> queue -> service;
 * - `svg`: a picture in three columns, publishers, exchanges, and consumers with their queues.
 *
 * Publishers are known from each service's `publishes` option; a service that publishes without
 * declaring it does not show.
 */
export function topology(services: readonly ServiceInput[], options: TopologyOptions = {}): string {
  const flows = flowsOf(services);
  switch (options.format ?? 'text') {
    case 'mermaid':
      return topologyMermaid(flows);
    case 'svg':
      return topologySvg(flows, options.title === undefined ? {} : { title: options.title });
    default:
      return topologyText(flows);
  }
}

/** The plain-text topology: see {@link topology}. */
export function topologyText(flows: Flows): string {
  const lines: string[] = [];
  for (const exchange of flows.exchanges) {
    lines.push(`exchange ${exchange}`);
    for (const v of flows.versions.filter((x) => x.exchange === exchange)) {
      lines.push(...routingKeyLines(flows, v));
    }
    lines.push('');
  }
  for (const service of flows.services) lines.push(...serviceLines(flows, service), '');
  if (lines.length === 0) lines.push('no services', '');
  return lines.join('\n');
}

function routingKeyLines(flows: Flows, v: RoutedVersion): string[] {
  const publishers = flows.publications.filter((p) => p.routingKey === v.routingKey);
  const receivers = flows.subscriptions.filter((s) => s.routed.includes(v));
  const accepted = receivers.filter((s) => s.accepted.includes(v));
  const rejected = receivers.filter((s) => !s.accepted.includes(v));
  const column = (label: string, items: string[]) =>
    items.map((item, i) => `    ${(i === 0 ? label : '').padEnd(14)}${item}`);
  return [
    `  ${v.routingKey}`,
    ...column(
      'published by',
      publishers.length ? publishers.map((p) => p.service) : ['(nobody declares it)'],
    ),
    ...column(
      'consumed by',
      accepted.map((s) => `${s.service}  ${queueNote(s, v)}`),
    ),
    ...column(
      'dead-lettered',
      rejected.map((s) => `${s.service}  ${rejectionNote(s, v)}`),
    ),
  ];
}

function queueNote(s: Subscription, v: RoutedVersion): string {
  return `(queue ${queueLabel(s)}, binding ${s.pattern}${conversion(s, v)})`;
}

function rejectionNote(s: Subscription, v: RoutedVersion): string {
  const target = s.handlerVersions.get(eventKey(v.event));
  const reason =
    target === undefined
      ? 'unknown-event: the handler does not take this event'
      : `unsupported-version: the handler reads up to v${target}`;
  return `(queue ${queueLabel(s)}, binding ${s.pattern}: ${reason})`;
}

function serviceLines(flows: Flows, service: string): string[] {
  const published = flows.publications.filter((p) => p.service === service);
  const subscriptions = flows.subscriptions.filter((s) => s.service === service);
  const lines = [`service ${service}`];
  if (published.length > 0) {
    lines.push(`  publishes  ${published.map((p) => p.routingKey).join(', ')}`);
  }
  const queueWidth = Math.max(0, ...subscriptions.map((s) => queueLabel(s).length));
  const bindingWidth = Math.max(
    0,
    ...subscriptions.map((s) => s.exchange.length + s.pattern.length),
  );
  for (const s of subscriptions) {
    const keys = s.accepted.map((v) => v.routingKey).join(', ') || 'nothing known';
    const binding = `${s.exchange} by ${s.pattern}`.padEnd(bindingWidth + 4);
    lines.push(
      `  queue      ${queueLabel(s).padEnd(queueWidth)}  bound to ${binding}  accepts ${keys}`,
    );
  }
  if (lines.length === 1) lines.push('  declares no publishes and no handlers');
  return lines;
}

/** The Mermaid flowchart: see {@link topology}. */
export function topologyMermaid(flows: Flows): string {
  const ids = new MermaidIds();
  const lines = ['flowchart LR'];
  for (const service of flows.services) {
    lines.push(`  ${ids.of('service', service)}(["${label(service)}"])`);
  }
  for (const exchange of flows.exchanges) {
    lines.push(`  ${ids.of('exchange', exchange)}{{"${label(`exchange ${exchange}`)}"}}`);
  }
  const queues = new Map(flows.subscriptions.map((s) => [s.queue, s]));
  for (const [queue, s] of queues) {
    const service = s.service;
    lines.push(`  ${ids.of('queue', queue)}[("${label(queueLabel(s))}")]`);
    lines.push(`  ${ids.of('queue', queue)} -.-> ${ids.of('service', service)}`);
  }
  for (const p of flows.publications) {
    const from = ids.of('service', p.service);
    lines.push(`  ${from} -->|"${label(p.routingKey)}"| ${ids.of('exchange', p.exchange)}`);
  }
  for (const s of flows.subscriptions) {
    const from = ids.of('exchange', s.exchange);
    lines.push(`  ${from} -->|"${label(s.pattern)}"| ${ids.of('queue', s.queue)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Mermaid node ids: letters, digits and `_` only, unique per (kind, name). */
class MermaidIds {
  private readonly ids = new Map<string, string>();
  private readonly used = new Set<string>();

  of(kind: 'service' | 'exchange' | 'queue', name: string): string {
    const key = `${kind}:${name}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      const base = `${kind[0]}_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
      id = base;
      for (let n = 2; this.used.has(id); n++) id = `${base}_${n}`;
      this.ids.set(key, id);
      this.used.add(id);
    }
    return id;
  }
}

/** Escapes text for a quoted Mermaid label: `#` starts an entity, `"` ends the label. */
function label(text: string): string {
  return text.replace(/[#"<>]/g, (c) => `#${c.charCodeAt(0)};`);
}
