import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBillingService, type JournalEntry } from '@ecommerce/billing';
import { Order, orderExchange } from '@ecommerce/contracts';
import { createLogisticService } from '@ecommerce/logistic';
import { createNotificationService } from '@ecommerce/notification';
import { createOrderService } from '@ecommerce/order';
import type { Page } from 'playwright-core';
import {
  createService,
  defineEvent,
  type Logger,
  MemoryBroker,
  type Service,
  silentLogger,
  type Transport,
} from 'tidings';
import { amqpTransport } from 'tidings/amqp';
import { startConsole } from 'tidings/console';
import { brokerReachable, uniqueName } from 'tidings/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { chromiumAvailable, openBrowser } from './browser.js';

/**
 * The console in a real browser, on the example: the page shows the four services, an order that
 * Billing could not read is dead-lettered, replayed from the page once Billing is upgraded, and
 * then found in Billing's ledger through Billing's HTTP API.
 *
 * How the order gets dead-lettered, naturally: during a rolling upgrade. Order already publishes
 * `order.v2.submit`, but Billing still runs its build from before version 2 existed: its contracts
 * know version 1 of `order.submit` only, so a version 2 order is dead-lettered with reason
 * `unsupported-version` (Tidings never drops what a consumer cannot read). Billing is upgraded to
 * the example's current build (written against version 2), and the order is replayed from the
 * console: it lands in the ledger. That is the recovery docs/concepts.md describes for versions.
 *
 * With TIDINGS_SCREENSHOTS=1 the screenshots are written to docs/ (docs/console.md shows them);
 * otherwise to a temporary folder.
 */

const root = fileURLToPath(new URL('../../../', import.meta.url));
const screenshots = process.env.TIDINGS_SCREENSHOTS
  ? join(root, 'docs')
  : mkdtempSync(join(tmpdir(), 'tidings-console-shots-'));
const haveChromium = chromiumAvailable();

/** Billing's contract as it was before `order.v2.submit`: version 1 only. */
const orderSubmitBeforeV2 = defineEvent(orderExchange, 'submit', Order);

/** The example's services, with Billing on its old build until `upgradeBilling()`. */
interface Deployment {
  readonly orderUrl: string;
  /** Stops the old Billing and starts the current one; resolves with its HTTP API's URL. */
  upgradeBilling(): Promise<string>;
  /** The services, for a console in this process. */
  services(): Service[];
  stop(): Promise<void>;
}

async function deploy(transport: () => Transport, logger: Logger): Promise<Deployment> {
  const oldBilling = createService({ name: 'billing', transport: transport(), logger });
  oldBilling.on(orderSubmitBeforeV2, () => {
    throw new Error('the old Billing only ever sees version 2 orders in this test');
  });
  await oldBilling.start();
  const logistic = createLogisticService({ transport: transport(), logger });
  const notification = createNotificationService({ transport: transport(), logger });
  const order = createOrderService({ transport: transport(), logger });
  const stops: (() => Promise<void>)[] = [];
  await logistic.start();
  stops.push(() => logistic.stop());
  await notification.start();
  stops.push(() => notification.stop());
  const orderUrl = await order.start();
  stops.push(() => order.stop());
  let billing: ReturnType<typeof createBillingService> | undefined;
  let billingStopped = false;
  return {
    orderUrl,
    services: () => [
      order.service,
      billing?.service ?? oldBilling,
      logistic.service,
      notification.service,
    ],
    async upgradeBilling() {
      await oldBilling.stop();
      billingStopped = true;
      billing = createBillingService({ transport: transport(), logger });
      const url = await billing.start();
      stops.push(() => billing!.stop());
      return url;
    },
    async stop() {
      for (const stop of stops.reverse()) await stop();
      if (!billingStopped) await oldBilling.stop();
    },
  };
}

async function placeOrder(orderUrl: string, name: string): Promise<number> {
  const res = await fetch(`${orderUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      customer: { name, email: 'eve@example.com' },
      currency: 'GBP',
      lines: [{ id: 7, quantity: 2, price: 12.5 }],
    }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

async function journal(billingUrl: string): Promise<JournalEntry[]> {
  return (await (await fetch(`${billingUrl}/journal`)).json()) as JournalEntry[];
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The scenario in the page. `shots` names the screenshots (undefined: none).
 * Returns the texts the page showed, for the caller's checks.
 */
async function playInPage(
  page: Page,
  consoleUrl: string,
  deployment: Deployment,
  shots: { prefix: string } | undefined,
): Promise<string> {
  await page.goto(consoleUrl);
  await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
  const services = await page
    .locator('#svg [data-service]')
    .evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-service')))].sort());
  expect(services).toEqual(['billing', 'logistic', 'notification', 'order']);
  const queues = await page
    .locator('#queues tbody tr')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-queue')));
  for (const q of ['billing.order.submit', 'logistic.order.submit', 'order.logistic.dispatched']) {
    expect(queues).toContain(q);
  }

  // The live tail of the order exchange, version 2 of submit only.
  await page.selectOption('#tail-exchange', 'order');
  await page.selectOption('#tail-event', 'submit');
  await page.selectOption('#tail-version', '2');
  await page.click('#tail-start');
  await waitForText(page, '#tail-status', /^tailing/, 30_000);

  // A customer name that would run script if the page ever put message text in as HTML.
  const hostile = '<img src=x onerror="window.__xss=1">Eve';
  const orderId = await placeOrder(deployment.orderUrl, hostile);
  const tailRow = page.locator('#tail-table tbody tr', { hasText: 'order.v2.submit' }).first();
  await tailRow.waitFor({ timeout: 30_000 });
  await tailRow.click();
  await page.waitForSelector('#tail-detail pre');
  expect(await page.locator('#tail-detail pre').first().textContent()).toContain(
    JSON.stringify(hostile),
  );

  // Billing (old build) dead-letters it; the numbers show it, then the list.
  const chip = page.locator('#dlq-queues button[data-queue="billing.order.submit"] .count');
  await waitForDeadLetters(page, 'billing.order.submit', 1, 60_000);
  expect(await chip.textContent()).toBe('1');
  await page.click('#dlq-queues button[data-queue="billing.order.submit"]');
  const row = page.locator('#dlq-table tbody tr', { hasText: 'unsupported-version' });
  await row.waitFor({ timeout: 30_000 });
  const cells = await row.locator('td').allTextContents();
  expect(cells[2]).toBe('order.v2.submit');
  expect(cells[3]).toBe('unsupported-version');
  expect(cells[8]).toContain(`"id": ${orderId}`);
  await row.locator('td').nth(1).click();
  await page.waitForSelector('#dlq-detail pre');
  if (shots) {
    await page
      .locator('#topology')
      .screenshot({ path: join(screenshots, `${shots.prefix}-topology.png`) });
    await page
      .locator('#dead-letters')
      .screenshot({ path: join(screenshots, `${shots.prefix}-dead-letters.png`) });
    await page.locator('#tail').screenshot({ path: join(screenshots, `${shots.prefix}-tail.png`) });
  }
  const shown = (await page.locator('body').textContent()) ?? '';

  // Nothing from the messages ran or became an element.
  expect(await page.evaluate('window.__xss')).toBeUndefined();
  expect(await page.locator('#tail-table img, #dlq-table img, .detail img').count()).toBe(0);

  // Billing is upgraded; the order is replayed from the page and lands in the ledger.
  const billingUrl = await deployment.upgradeBilling();
  expect((await journal(billingUrl)).some((e) => e.orderId === orderId)).toBe(false);
  await row.locator('input[type=checkbox]').check();
  await page.click('#dlq-replay-selected');
  await waitForText(page, '#dlq-status', /^Replayed 1 message/, 30_000);
  const entry = await until('the replayed order in the ledger', async () =>
    (await journal(billingUrl)).find((e) => e.orderId === orderId),
  );
  expect(entry.memo).toBe(`Sale, order #${orderId} (GBP)`);
  expect(entry.postings).toContainEqual({ account: 'revenue', side: 'credit', cents: 2500 });
  await waitForDeadLetters(page, 'billing.order.submit', 0, 30_000);
  return shown;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

const rabbitUp = haveChromium && (await brokerReachable('127.0.0.1', 5672, 'RabbitMQ'));

describe.skipIf(!rabbitUp)('the console in Chromium, on the example running on RabbitMQ', () => {
  it('shows the four services, a dead-lettered order, replays it, and Billing books it', async () => {
    const vhost = uniqueName('tidings-console');
    execFileSync('rabbitmqctl', ['add_vhost', vhost], { stdio: 'ignore' });
    cleanups.push(async () => {
      execFileSync('rabbitmqctl', ['delete_vhost', vhost], { stdio: 'ignore' });
    });
    execFileSync('rabbitmqctl', ['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*'], {
      stdio: 'ignore',
    });
    const url = `amqp://guest:guest@127.0.0.1:5672/${vhost}`;
    const transports: Transport[] = [];
    cleanups.push(async () => {
      for (const t of transports) await t.close();
    });
    const deployment = await deploy(() => {
      const t = amqpTransport({ url, logger: silentLogger, connectionName: 'console-test' });
      transports.push(t);
      return t;
    }, silentLogger);
    cleanups.push(() => deployment.stop());

    // The console as users run it: the CLI, with the example's services module.
    const cli = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'console',
        '--broker',
        url,
        '--services',
        'examples/ecommerce/services.ts',
        '--port',
        '0',
        '--allow-writes',
        '--title',
        'E-commerce console',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(() => stopProcess(cli));
    const output: string[] = [];
    cli.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    cli.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    const consoleUrl = await until(
      'the console to listen',
      async () => /tidings console on (\S+)/.exec(output.join(''))?.[1],
    );

    const browser = await openBrowser();
    cleanups.push(() => browser.close());
    const shown = await playInPage(browser.page, consoleUrl, deployment, { prefix: 'console' });
    expect(browser.errors).toEqual([]);
    expect(shown).toContain(`amqp://127.0.0.1:5672/${vhost}`);
    // The broker's password (guest) is nowhere: not in the page, not in the CLI's output.
    const html = await browser.page.content();
    expect(`${html}\n${shown}`).not.toContain('guest');
    expect(output.join('')).not.toContain('guest:guest');
    expect(output.join('')).toContain('replayed 1 from billing.order.submit.dlq');
  }, 240_000);
});

describe.skipIf(!haveChromium)('the console in Chromium, on the embedded broker', () => {
  it('shows the four services, a dead-lettered order, replays it, and Billing books it', async () => {
    const broker = new MemoryBroker();
    const deployment = await deploy(() => broker.transport(), silentLogger);
    cleanups.push(() => deployment.stop());
    // In this process, as the demo's --console does: the console gets the Service objects.
    const running = await startConsole({
      transport: broker.transport(),
      services: deployment.services(),
      brokerUrl: 'memory://',
      allowWrites: true,
      logger: silentLogger,
      statsIntervalMs: 500,
    });
    cleanups.push(() => running.close());
    const browser = await openBrowser();
    cleanups.push(() => browser.close());
    const shown = await playInPage(browser.page, running.url, deployment, undefined);
    expect(browser.errors).toEqual([]);
    expect(shown).toContain('numbers: passive declares');
  }, 180_000);

  it('stays responsive under a fast stream: bounded rows, drops counted, controls working', async () => {
    const broker = new MemoryBroker();
    const deployment = await deploy(() => broker.transport(), silentLogger);
    cleanups.push(() => deployment.stop());
    const running = await startConsole({
      transport: broker.transport(),
      services: deployment.services(),
      logger: silentLogger,
    });
    cleanups.push(() => running.close());
    const browser = await openBrowser();
    cleanups.push(() => browser.close());
    const { page } = browser;
    await page.goto(running.url);
    await page.waitForSelector('body[data-ready]');
    await page.selectOption('#tail-exchange', 'logistic');
    await page.click('#tail-start');
    await waitForText(page, '#tail-status', /^tailing/, 30_000);
    // Messages straight onto the exchange, as fast as this process can publish them: nothing
    // consumes them but the tail (the routing key matches no service's binding).
    const publisher = broker.transport();
    const body = Buffer.from(JSON.stringify({ note: 'x'.repeat(3000) }));
    let sent = 0;
    let streaming = true;
    const started = Date.now();
    const stream = (async () => {
      while (streaming) {
        const batch = [];
        for (let i = 0; i < 500; i++, sent++) {
          batch.push(
            publisher.publish({
              exchange: 'logistic',
              routingKey: 'logistic.v1.noise',
              body,
              properties: { messageId: `m${sent}`, headers: {} },
            }),
          );
        }
        await Promise.all(batch);
        await new Promise((r) => setImmediate(r));
      }
    })();
    cleanups.push(async () => {
      streaming = false;
      await stream;
    });
    // While the stream runs: the page has drawn many batches, dropped what it could not show,
    // and still answers clicks.
    const newest = page.locator('#tail-table tbody tr td.num').first();
    await until('20,000 messages through the tail', async () => {
      const seq = Number(await newest.textContent().catch(() => '0'));
      return seq > 20_000 ? seq : undefined;
    });
    await waitForText(page, '#tail-status', /dropped/, 30_000);
    await page.click('#tail-pause');
    await waitForText(page, '#tail-pause', /^Resume \(\d+ skipped\)/, 30_000);
    const rows = await page.locator('#tail-table tbody tr').count();
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThanOrEqual(500);
    await page.click('#tail-stop');
    streaming = false;
    await stream;
    const seconds = (Date.now() - started) / 1000;
    expect(await page.locator('#tail-status').textContent()).toBe('stopped');
    expect(browser.errors).toEqual([]);
    console.log(
      `  fast stream: ${sent} messages of ${body.length} bytes in ${seconds.toFixed(1)} s ` +
        `(${Math.round(sent / seconds)}/s) into the tail; the page kept ${rows} rows`,
    );
  }, 180_000);

  it('is read-only unless told: the write buttons are off and the server refuses', async () => {
    const broker = new MemoryBroker();
    const deployment = await deploy(() => broker.transport(), silentLogger);
    cleanups.push(() => deployment.stop());
    const running = await startConsole({
      transport: broker.transport(),
      services: deployment.services(),
      logger: silentLogger,
    });
    cleanups.push(() => running.close());
    const browser = await openBrowser();
    cleanups.push(() => browser.close());
    const { page } = browser;
    await placeOrder(deployment.orderUrl, 'Ann');
    await page.goto(running.url);
    await page.waitForSelector('body[data-ready]');
    expect(await page.locator('#mode').textContent()).toBe('read-only');
    await waitForDeadLetters(page, 'billing.order.submit', 1, 30_000);
    await page.click('#dlq-queues button[data-queue="billing.order.submit"]');
    await page.locator('#dlq-table tbody tr', { hasText: 'unsupported-version' }).waitFor();
    for (const id of ['#dlq-replay-all', '#dlq-purge-all', '#dlq-replay-selected']) {
      expect(await page.locator(id).isDisabled(), id).toBe(true);
    }
    expect(await page.locator('#dlq-readonly').isVisible()).toBe(true);
    // Even a request made by hand from the page is refused.
    const answer = (await page.evaluate(`(async () => {
      const token = document.querySelector('meta[name="tidings-console-token"]').content;
      const res = await fetch('/api/dead-letters/replay', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-tidings-console-token': token },
        body: JSON.stringify({ queue: 'billing.order.submit', all: true }),
      });
      return { status: res.status, body: await res.text() };
    })()`)) as { status: number; body: string };
    expect(answer.status).toBe(403);
    expect(answer.body).toContain('--allow-writes');
    expect(broker.depth('billing.order.submit.dlq')).toBe(1);
  }, 120_000);
});

/** Waits until the element's text matches `text`. */
function waitForText(page: Page, selector: string, text: RegExp, timeout: number): Promise<void> {
  return page.locator(selector, { hasText: text }).waitFor({ timeout });
}

/** Waits until the page shows `count` dead letters for `queue`. */
function waitForDeadLetters(page: Page, queue: string, count: number, timeout: number) {
  const selector = `#dlq-queues button[data-queue="${queue}"] .count`;
  return waitForText(page, selector, new RegExp(`^${count}$`), timeout);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
