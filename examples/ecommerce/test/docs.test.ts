import { readFile } from 'node:fs/promises';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { beforeAll, describe, expect, it } from 'vitest';
import { exampleDocs, type GeneratedDoc } from '../docs.js';
import services from '../services.js';

const root = new URL('../../../', import.meta.url);

async function committed(path: string): Promise<string | undefined> {
  try {
    return await readFile(new URL(path, root), 'utf8');
  } catch {
    return undefined;
  }
}

describe('the generated documentation of the example', () => {
  let docs: GeneratedDoc[];
  beforeAll(async () => {
    docs = await exampleDocs();
  });
  const doc = (path: string): string => {
    const found = docs.find((d) => d.path === path);
    if (!found) throw new Error(`${path} is not generated`);
    return found.text;
  };

  it('is up to date: docs/ matches the services and contracts (else run npm run docs:generate)', async () => {
    expect(docs.map((d) => d.path).sort()).toEqual([
      'docs/asyncapi.yaml',
      'docs/topology.md',
      'docs/topology.svg',
    ]);
    const stale: string[] = [];
    for (const d of docs) if ((await committed(d.path)) !== d.text) stale.push(d.path);
    expect(stale, `stale; regenerate with npm run docs:generate: ${stale.join(', ')}`).toEqual([]);
  });

  it('has an AsyncAPI document that parses without errors', async () => {
    const { document, diagnostics } = await new Parser().parse(doc('docs/asyncapi.yaml'));
    const errors = diagnostics
      .filter((d) => d.severity === DiagnosticSeverity.Error)
      .map((d) => `${d.path.join('/')}: ${d.message}`);
    expect(errors).toEqual([]);
    expect(document?.info().title()).toBe('Tidings e-commerce example');
    expect(
      document
        ?.channels()
        .all()
        .map((c) => c.address())
        .sort(),
    ).toEqual([
      'logistic.v1.dispatched',
      'order.v1.chargeback',
      'order.v1.submit',
      'order.v2.submit',
    ]);
    const sends = document
      ?.operations()
      .all()
      .filter((o) => o.action() === 'send')
      .map((o) => o.id())
      .sort();
    expect(sends).toEqual([
      'logistic.send.logistic.v1.dispatched',
      'order.send.order.v1.chargeback',
      'order.send.order.v2.submit',
    ]);
  });

  it('draws who publishes and who consumes what, as the example wires it', () => {
    const text = doc('docs/topology.md');
    // Publishers.
    expect(text).toContain('s_order -->|"order.v2.submit"| e_order');
    expect(text).toContain('s_order -->|"order.v1.chargeback"| e_order');
    expect(text).toContain('s_logistic -->|"logistic.v1.dispatched"| e_logistic');
    // Consumers: Logistic reads submit v1, so v2 reaches it downcast.
    expect(text).toMatch(
      /logistic {2}\(queue logistic\.order\.submit, binding order\.\*\.submit, downcast to v1\)/,
    );
    for (const queue of [
      'billing.order.submit',
      'billing.order.chargeback',
      'logistic.order.submit',
      'notification.order.submit',
      'notification.logistic.dispatched',
      'order.logistic.dispatched',
    ]) {
      expect(doc('docs/topology.svg')).toContain(`>${queue}<`);
    }
    expect(doc('docs/topology.svg')).toContain('v1; v2 downcast');
  });

  it('builds the services without starting them', () => {
    const built = services();
    expect(built.map((s) => s.name)).toEqual(['order', 'billing', 'logistic', 'notification']);
  });
});
