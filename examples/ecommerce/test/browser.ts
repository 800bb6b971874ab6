import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

/** Debian's Chromium; `CHROMIUM_PATH` names another. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Whether the page tests can run: on a laptop without Chromium they are skipped with a visible
 * message; in CI (`CI` set) a missing Chromium is an error (`.ci/run` installs it).
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}, and CI requires it.`);
  }
  console.warn(
    `\n  SKIPPED: Chromium is not installed at ${CHROMIUM} (apt-get install chromium); ` +
      'the console page tests are skipped.\n',
  );
  return false;
}

/** A headless Chromium with a fresh profile, and a page in it; `close()` removes the profile. */
export async function openBrowser(): Promise<{
  context: BrowserContext;
  page: Page;
  errors: string[];
  close(): Promise<void>;
}> {
  const profile = mkdtempSync(join(tmpdir(), 'tidings-chromium-'));
  // The flags keep Chromium from calling home: this machine (and CI) has no internet.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('dialog', (dialog) => {
    errors.push(`unexpected dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
