import { compare } from './contracts.js';
import {
  conversion,
  type Flows,
  type Publication,
  queueLabel,
  type RoutedVersion,
  type Subscription,
} from './flows.js';

/** Options of {@link topologySvg}. */
export interface SvgOptions {
  /** The heading. @defaultValue 'Tidings topology' */
  readonly title?: string;
  /**
   * For a live view (the console): every service frame, exchange and queue row carries a
   * `data-service`, `data-exchange` or `data-queue` attribute, each exchange an empty
   * `<text data-stats-exchange="...">` in its middle, and each queue row an empty
   * `<text data-stats-queue="...">` to the right of its service, in a column added for them, for
   * a page to fill in. @defaultValue false
   */
  readonly live?: boolean;
}

/** Sizes in pixels. Text widths are estimated, so identifiers use a monospace font. */
const S = {
  margin: 28,
  top: 92,
  bottom: 72,
  head: 32,
  port: 28,
  gapY: 22,
  pad: 12,
  mono: 12,
  monoChar: 7.3,
  headChar: 8.9,
  lead: 16,
  middle: 150,
  liveColumn: 250,
} as const;

const PALETTE = ['#1d4ed8', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207'];
const MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
const SANS = "system-ui, 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif";

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

interface PublisherNode {
  readonly service: string;
  readonly edges: Publication[];
  box: Box;
}

interface ExchangeNode {
  readonly name: string;
  readonly color: string;
  readonly marker: string;
  box: Box;
}

interface QueueRow {
  readonly queue: string;
  readonly bindings: Subscription[];
  box: Box;
}

interface ConsumerNode {
  readonly service: string;
  readonly rows: QueueRow[];
  box: Box;
}

interface Layout {
  readonly publishers: PublisherNode[];
  readonly exchanges: ExchangeNode[];
  readonly consumers: ConsumerNode[];
  readonly width: number;
  readonly height: number;
  readonly publishLead: number;
  readonly bindLead: number;
  readonly live: boolean;
}

/**
 * Draws the topology as an SVG picture in three columns: services that publish (one arrow per
 * routing key, labelled with it), exchanges, and services that consume, each with its queues
 * (one arrow per binding, labelled with the pattern). A service that publishes and consumes
 * appears on both sides. Arrows take the colour of their exchange.
 */
export function topologySvg(flows: Flows, options: SvgOptions = {}): string {
  const layout = layOut(flows, options.live === true);
  const title = options.title ?? 'Tidings topology';
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" ` +
      `viewBox="0 0 ${layout.width} ${layout.height}" role="img" font-family="${SANS}">`,
    `<title>${esc(title)}</title>`,
    markers(layout.exchanges),
    `<rect width="${layout.width}" height="${layout.height}" fill="#ffffff"/>`,
    heading(title, flows, layout),
    ...publishEdges(layout),
    ...bindingEdges(layout),
    ...layout.publishers.map((p) => publisherBox(p, layout.live)),
    ...layout.exchanges.map((e) => exchangeBox(e, layout.live)),
    ...layout.consumers.map((c) => consumerBox(c, layout.live)),
    legend(layout),
    '</svg>',
    '',
  ].join('\n');
}

function layOut(flows: Flows, live: boolean): Layout {
  const exchanges = orderExchanges(flows);
  const rank = new Map(exchanges.map((e, i) => [e.name, i]));
  const publishers = publisherNodes(flows, rank);
  const consumers = consumerNodes(flows, rank);
  const publishLead = Math.max(60, ...flows.publications.map((p) => textWidth(p.routingKey))) + 24;
  const bindLead = Math.max(60, ...flows.subscriptions.map((s) => textWidth(s.pattern))) + 28;
  const leftW = columnWidth(publishers.map((p) => headWidth(p.service)));
  const midW = columnWidth(exchanges.map((e) => headWidth(e.name)));
  const rightW = columnWidth(
    consumers.flatMap((c) => [
      headWidth(c.service),
      ...c.rows.map(
        (row) => textWidth(row.queue) + versionBadge(row).text.length * 6.6 + 4 * S.pad,
      ),
    ]),
  );
  const xMid = S.margin + leftW + publishLead + S.middle;
  const xRight = xMid + midW + bindLead + S.middle;
  const columns: [readonly { box: Box }[], number][] = [
    [
      publishers,
      stack(publishers, S.margin, leftW, (p) => S.head + Math.max(1, p.edges.length) * S.port),
    ],
    [
      exchanges,
      stack(exchanges, xMid, midW, (e) => S.head + exchangePorts(flows, e.name) * S.port),
    ],
    [consumers, stack(consumers, xRight, rightW, consumerHeight)],
  ];
  const content = Math.max(...columns.map(([, height]) => height));
  // Each column is centred against the tallest one.
  for (const [nodes, height] of columns) {
    for (const node of nodes) node.box.y += (content - height) / 2;
  }
  for (const c of consumers) placeRows(c);
  return {
    publishers,
    exchanges,
    consumers,
    width: Math.ceil(
      Math.max(
        xRight + rightW + (live ? S.liveColumn : 0),
        ...LEGEND.map((line) => line.length * 5.6),
      ) + S.margin,
    ),
    height: Math.ceil(S.top + content + S.bottom),
    publishLead,
    bindLead,
    live,
  };
}

/** Exchanges in the order of their first publisher, so that arrows cross as little as possible. */
function orderExchanges(flows: Flows): ExchangeNode[] {
  const publishers = [...new Set(flows.publications.map((p) => p.service))].sort(compare);
  const score = (exchange: string) => {
    const ranks = flows.publications
      .filter((p) => p.exchange === exchange)
      .map((p) => publishers.indexOf(p.service));
    return ranks.length > 0 ? ranks.reduce((a, b) => a + b, 0) / ranks.length : publishers.length;
  };
  return [...flows.exchanges]
    .sort((a, b) => score(a) - score(b) || compare(a, b))
    .map((name, i) => ({
      name,
      color: PALETTE[i % PALETTE.length]!,
      marker: `arrow-${i % PALETTE.length}`,
      box: { x: 0, y: 0, w: 0, h: 0 },
    }));
}

function publisherNodes(flows: Flows, rank: ReadonlyMap<string, number>): PublisherNode[] {
  const consumers = new Set(flows.subscriptions.map((s) => s.service));
  return flows.services
    .map((service) => ({
      service,
      edges: flows.publications
        .filter((p) => p.service === service)
        .sort(
          (a, b) =>
            rank.get(a.exchange)! - rank.get(b.exchange)! || compare(a.routingKey, b.routingKey),
        ),
      box: { x: 0, y: 0, w: 0, h: 0 },
    }))
    .filter((p) => p.edges.length > 0 || !consumers.has(p.service))
    .sort(
      (a, b) => meanRank(a.edges, rank) - meanRank(b.edges, rank) || compare(a.service, b.service),
    );
}

function consumerNodes(flows: Flows, rank: ReadonlyMap<string, number>): ConsumerNode[] {
  const byService = new Map<string, Map<string, Subscription[]>>();
  for (const s of flows.subscriptions) {
    const queues = byService.get(s.service) ?? new Map<string, Subscription[]>();
    queues.set(s.queue, [...(queues.get(s.queue) ?? []), s]);
    byService.set(s.service, queues);
  }
  const rowRank = (row: QueueRow) => meanRank(row.bindings, rank);
  return [...byService.entries()]
    .map(([service, queues]) => ({
      service,
      rows: [...queues.entries()]
        .map(([queue, bindings]) => ({
          queue: bindings[0] ? queueLabel(bindings[0]) : queue,
          bindings,
          box: { x: 0, y: 0, w: 0, h: 0 },
        }))
        .sort((a, b) => rowRank(a) - rowRank(b) || compare(a.queue, b.queue)),
      box: { x: 0, y: 0, w: 0, h: 0 },
    }))
    .sort(
      (a, b) =>
        meanRank(
          a.rows.flatMap((r) => r.bindings),
          rank,
        ) -
          meanRank(
            b.rows.flatMap((r) => r.bindings),
            rank,
          ) || compare(a.service, b.service),
    );
}

function meanRank(
  items: readonly { exchange: string }[],
  rank: ReadonlyMap<string, number>,
): number {
  if (items.length === 0) return Number.MAX_SAFE_INTEGER;
  return items.reduce((sum, item) => sum + rank.get(item.exchange)!, 0) / items.length;
}

function exchangePorts(flows: Flows, exchange: string): number {
  const incoming = flows.publications.filter((p) => p.exchange === exchange).length;
  const outgoing = flows.subscriptions.filter((s) => s.exchange === exchange).length;
  return Math.max(1, incoming, outgoing);
}

function consumerHeight(c: ConsumerNode): number {
  return S.head + c.rows.reduce((sum, r) => sum + r.bindings.length * S.port + 8, 0) + 4;
}

/** Places boxes top to bottom in a column; returns the column's height. */
function stack<T extends { box: Box }>(
  nodes: T[],
  x: number,
  w: number,
  height: (n: T) => number,
): number {
  let y = S.top;
  for (const node of nodes) {
    node.box = { x, y, w, h: height(node) };
    y += node.box.h + S.gapY;
  }
  return nodes.length > 0 ? y - S.gapY - S.top : 0;
}

function placeRows(c: ConsumerNode): void {
  let y = c.box.y + S.head;
  for (const row of c.rows) {
    const h = row.bindings.length * S.port;
    row.box = { x: c.box.x + S.pad, y: y + 4, w: c.box.w - 2 * S.pad, h };
    y += h + 8;
  }
}

function columnWidth(widths: readonly number[]): number {
  return Math.ceil(Math.max(110, ...widths) + 2 * S.pad);
}

function textWidth(text: string): number {
  return text.length * S.monoChar;
}

function headWidth(text: string): number {
  return text.length * S.headChar;
}

/** Where an arrow leaves a publisher: one port per routing key, in order. */
function publishPort(p: PublisherNode, i: number): { x: number; y: number } {
  return { x: p.box.x + p.box.w, y: p.box.y + S.head + (i + 0.5) * S.port };
}

/** Ports spread evenly along one side of an exchange, ordered by the other end's height. */
function exchangePortY(e: ExchangeNode, i: number, count: number): number {
  const body = e.box.h - S.head;
  return e.box.y + S.head + ((i + 0.5) * body) / count;
}

function publishEdges(layout: Layout): string[] {
  const edges = layout.publishers.flatMap((p) =>
    p.edges.map((edge, i) => ({ edge, from: publishPort(p, i) })),
  );
  return layout.exchanges.flatMap((e) => {
    const mine = edges
      .filter((x) => x.edge.exchange === e.name)
      .sort((a, b) => a.from.y - b.from.y);
    return mine.map(({ edge, from }, i) => {
      const to = { x: e.box.x, y: exchangePortY(e, i, mine.length) };
      const bendFrom = from.x + layout.publishLead;
      const path = curve(from, bendFrom, to.x - S.lead, to);
      return edgeSvg(path, e, edge.routingKey, { x: from.x + 8, y: from.y - 6, anchor: 'start' });
    });
  });
}

function bindingEdges(layout: Layout): string[] {
  const ends = layout.consumers.flatMap((c) =>
    c.rows.flatMap((row) =>
      // Arrows end on the service's frame, level with the queue they feed.
      row.bindings.map((s, i) => ({ s, to: { x: c.box.x, y: row.box.y + (i + 0.5) * S.port } })),
    ),
  );
  return layout.exchanges.flatMap((e) => {
    const mine = ends.filter((x) => x.s.exchange === e.name).sort((a, b) => a.to.y - b.to.y);
    return mine.map(({ s, to }, i) => {
      const from = { x: e.box.x + e.box.w, y: exchangePortY(e, i, mine.length) };
      const path = curve(from, from.x + S.lead, to.x - layout.bindLead, to);
      return edgeSvg(path, e, s.pattern, { x: to.x - 12, y: to.y - 6, anchor: 'end' });
    });
  });
}

/** A horizontal run, an S-curve between two x positions, and a horizontal run into the target. */
function curve(
  from: { x: number; y: number },
  a: number,
  b: number,
  to: { x: number; y: number },
): string {
  const m = (b - a) / 2;
  return (
    `M${r(from.x)},${r(from.y)} H${r(a)} ` +
    `C${r(a + m)},${r(from.y)} ${r(b - m)},${r(to.y)} ${r(b)},${r(to.y)} H${r(to.x - 2)}`
  );
}

function edgeSvg(
  path: string,
  e: ExchangeNode,
  label: string,
  at: { x: number; y: number; anchor: 'start' | 'end' },
): string {
  return (
    `<path d="${path}" fill="none" stroke="${e.color}" stroke-width="1.6" ` +
    `marker-end="url(#${e.marker})"/>\n` +
    `<text x="${r(at.x)}" y="${r(at.y)}" text-anchor="${at.anchor}" font-family="${MONO}" ` +
    `font-size="${S.mono}" fill="${e.color}" stroke="#ffffff" stroke-width="4" ` +
    `stroke-linejoin="round" paint-order="stroke">${esc(label)}</text>`
  );
}

function publisherBox(p: PublisherNode, live: boolean): string {
  const note = p.edges.length === 0 ? 'no declared flows' : '';
  return serviceFrame(p.box, p.service, note, live);
}

function serviceFrame(box: Box, name: string, note: string, live: boolean): string {
  const data = live ? ` data-service="${esc(name)}"` : '';
  const parts = [
    `<rect x="${r(box.x)}" y="${r(box.y)}" width="${r(box.w)}" height="${r(box.h)}" rx="8" ` +
      `fill="#f1f5f9" stroke="#475569" stroke-width="1.4"${data}/>`,
    `<text x="${r(box.x + S.pad)}" y="${r(box.y + 21)}" font-size="14" font-weight="bold" ` +
      `fill="#0f172a">${esc(name)}</text>`,
  ];
  if (note) {
    parts.push(
      `<text x="${r(box.x + S.pad)}" y="${r(box.y + S.head + 16)}" font-size="11" ` +
        `fill="#64748b">${esc(note)}</text>`,
    );
  }
  return parts.join('\n');
}

function exchangeBox(e: ExchangeNode, live: boolean): string {
  const { x, y, w, h } = e.box;
  const data = live ? ` data-exchange="${esc(e.name)}"` : '';
  const stats = live
    ? [
        `<text x="${r(x + w / 2)}" y="${r(y + S.head + (h - S.head) / 2 + 8)}" ` +
          `text-anchor="middle" font-size="11" fill="#334155" ` +
          `data-stats-exchange="${esc(e.name)}"></text>`,
      ]
    : [];
  return [
    `<rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}" rx="14" fill="#ffffff" ` +
      `stroke="${e.color}" stroke-width="2"${data}/>`,
    `<text x="${r(x + w / 2)}" y="${r(y + 20)}" text-anchor="middle" font-size="14" ` +
      `font-weight="bold" fill="${e.color}">${esc(e.name)}</text>`,
    `<text x="${r(x + w / 2)}" y="${r(y + 20 + 15)}" text-anchor="middle" font-size="10" ` +
      'fill="#64748b">topic exchange</text>',
    ...stats,
  ].join('\n');
}

function consumerBox(c: ConsumerNode, live: boolean): string {
  const rows = c.rows.map((row) => {
    const { x, y, w, h } = row.box;
    const badge = versionBadge(row);
    const data = live ? ` data-queue="${esc(row.queue)}"` : '';
    const stats = live
      ? `\n<text x="${r(c.box.x + c.box.w + 14)}" y="${r(y + h / 2 + 4)}" font-size="11" ` +
        `fill="#334155" data-stats-queue="${esc(row.queue)}"></text>`
      : '';
    return (
      `<rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}" rx="4" fill="#ffffff" ` +
      `stroke="#94a3b8"${data}/>\n` +
      `<text x="${r(x + S.pad)}" y="${r(y + h / 2 + 4)}" font-family="${MONO}" ` +
      `font-size="${S.mono}" fill="#1e293b">${esc(row.queue)}</text>\n` +
      `<text x="${r(x + w - 8)}" y="${r(y + h / 2 + 4)}" text-anchor="end" font-size="11" ` +
      `fill="${badge.rejects ? '#b91c1c' : '#64748b'}">${esc(badge.text)}</text>` +
      stats
    );
  });
  return [serviceFrame(c.box, c.service, '', live), ...rows].join('\n');
}

/**
 * What a queue's handler reads: `v2` (the version it is written against); `v1; v2 downcast` when
 * a newer version reaches it converted; `v1; v2 to DLQ` when a newer one would be dead-lettered.
 */
function versionBadge(row: QueueRow): { text: string; rejects: boolean } {
  const versions = new Set(row.bindings.flatMap((s) => [...s.handlerVersions.values()]));
  const reads = [...versions].sort((a, b) => a - b).map((v) => `v${v}`);
  const text = reads.length > 2 ? `${reads.length} events` : reads.join(', ');
  const wire = (pick: (s: Subscription, v: RoutedVersion) => boolean) => {
    const found = row.bindings.flatMap((s) =>
      s.routed.filter((v) => pick(s, v)).map((v) => `v${v.version.version}`),
    );
    return [...new Set(found)].sort(compare).join(', ');
  };
  const rejected = wire((s, v) => !s.accepted.includes(v));
  if (rejected) return { text: `${text}; ${rejected} to DLQ`, rejects: true };
  const downcast = wire((s, v) => s.accepted.includes(v) && conversion(s, v).includes('downcast'));
  return { text: downcast ? `${text}; ${downcast} downcast` : text, rejects: false };
}

function heading(title: string, flows: Flows, layout: Layout): string {
  const queues = new Set(flows.subscriptions.map((s) => s.queue)).size;
  const counts = [
    count(flows.services.length, 'service'),
    count(flows.exchanges.length, 'exchange'),
    count(queues, 'queue'),
  ].join(', ');
  const columnTitle = (x: number, text: string) =>
    `<text x="${r(x)}" y="${S.top - 14}" font-size="11" font-weight="bold" letter-spacing="1" ` +
    `fill="#64748b">${text}</text>`;
  const xMid = layout.exchanges[0]?.box.x ?? S.margin;
  const xRight = layout.consumers[0]?.box.x ?? xMid;
  return [
    `<text x="${S.margin}" y="38" font-size="20" font-weight="bold" fill="#0f172a">${esc(title)}</text>`,
    `<text x="${S.margin}" y="58" font-size="12" fill="#475569">${esc(counts)}</text>`,
    layout.publishers.length > 0 ? columnTitle(S.margin, 'PUBLISHERS') : '',
    layout.exchanges.length > 0 ? columnTitle(xMid, 'EXCHANGES') : '',
    layout.consumers.length > 0 ? columnTitle(xRight, 'CONSUMERS AND THEIR QUEUES') : '',
  ]
    .filter((line) => line !== '')
    .join('\n');
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

const LEGEND = [
  'Arrows into an exchange carry the routing key published; arrows out of it, the binding ' +
    'pattern of the queue. A service that publishes and consumes appears on both sides.',
  'Beside each queue: the event version its handler is written against, and what becomes of ' +
    'newer versions that reach it (downcast, or dead-lettered).',
];

function legend(layout: Layout): string {
  return LEGEND.map(
    (line, i) =>
      `<text x="${S.margin}" y="${layout.height - 36 + i * 16}" font-size="11" fill="#64748b">` +
      `${esc(line)}</text>`,
  ).join('\n');
}

function markers(exchanges: readonly ExchangeNode[]): string {
  const defs = exchanges
    .filter((e, i) => exchanges.findIndex((x) => x.marker === e.marker) === i)
    .map(
      (e) =>
        `<marker id="${e.marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" ` +
        `markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${e.color}"/></marker>`,
    );
  return `<defs>${defs.join('')}</defs>`;
}

function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Escapes text for XML content and attribute values. */
function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}
