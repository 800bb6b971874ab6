/**
 * `npm run bench:report`: renders docs/benchmarks.md and docs/benchmarks.svg from the runs saved in
 * bench/results/ (one JSON file per full run of `npm run bench`), without running anything. The
 * newest full run gives the detailed tables; the newest three give the spread of every target over
 * runs. Only quiet runs (see `loadedScenarios`) are used once one is saved; loaded ones only while
 * none is, marked as loaded. `npm run bench` calls the same function after saving its run.
 *
 *   npx tsx bench/report.ts [results/<file>.json …]   (default: every file in bench/results/)
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadedScenarios } from './analysis.js';
import { renderSvg } from './chart.js';
import { renderMarkdown, renderPending } from './markdown.js';
import type { Results } from './results.js';

/** Where full runs leave their raw results. */
export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

/** How many of the newest full runs the spread is taken over. */
export const SPREAD_RUNS = 3;

const FULL = ['costs', 'publish', 'each', 'e2e', 'latency', 'embedded', 'memory'];

/** Whether a saved run ran every scenario (older results, without the list, were full runs). */
function isFull(r: Results): boolean {
  return !r.scenarios || FULL.every((k) => r.scenarios!.includes(k));
}

/** The saved full runs, oldest first. */
export function savedRuns(files?: readonly string[]): Results[] {
  const paths =
    files && files.length > 0
      ? files
      : (existsSync(RESULTS_DIR) ? readdirSync(RESULTS_DIR) : [])
          .filter((f) => f.endsWith('.json'))
          .sort()
          .map((f) => join(RESULTS_DIR, f));
  return paths
    .map((p) => JSON.parse(readFileSync(p, 'utf8')) as Results)
    .filter(isFull)
    .sort((a, b) => a.machine.date.localeCompare(b.machine.date));
}

/** Writes the docs from the newest saved runs; returns how many were used and how many were loaded. */
export function writeReport(files?: readonly string[]): { runs: number; loaded: number } {
  // Quiet runs only, once there is one: a loaded run is shown (marked) only when no quiet run is.
  const all = savedRuns(files);
  const quiet = all.filter((r) => loadedScenarios(r).length === 0);
  const runs = (quiet.length > 0 ? quiet : all).slice(-SPREAD_RUNS);
  const latest = runs[runs.length - 1];
  if (!latest) {
    writeFileSync(new URL('../docs/benchmarks.md', import.meta.url), renderPending());
    return { runs: 0, loaded: 0 };
  }
  writeFileSync(
    new URL('../docs/benchmarks.md', import.meta.url),
    renderMarkdown(latest, runs, SPREAD_RUNS),
  );
  writeFileSync(new URL('../docs/benchmarks.svg', import.meta.url), renderSvg(latest));
  return { runs: runs.length, loaded: runs.filter((r) => loadedScenarios(r).length > 0).length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { runs, loaded } = writeReport(process.argv.slice(2));
  process.stderr.write(
    runs === 0
      ? 'no saved full run: wrote docs/benchmarks.md without figures (method and notes)\n'
      : `wrote docs/benchmarks.md and docs/benchmarks.svg from ${runs} saved run(s)${loaded ? `; ${loaded} of them loaded, marked as such` : ''}\n`,
  );
}
