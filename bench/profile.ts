/**
 * Summarises a `.cpuprofile` written by `node --cpu-prof`: self time by function and by file, and
 * inclusive time of the functions named on the command line. Used to find where the time of a
 * scenario goes (see docs/benchmarks.md, How the figures were improved).
 *
 *   npx tsx bench/profile.ts CPU.….cpuprofile [function names…]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function shortUrl(url: string): string {
  const i = url.indexOf('node_modules/');
  if (i >= 0) return url.slice(i + 'node_modules/'.length);
  return url.replace(/^file:\/\/.*?\/(src|bench|examples)\//, '$1/') || '(native)';
}

function main(): void {
  const [file, ...inclusiveNames] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: tsx bench/profile.ts <file.cpuprofile> [function names…]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const where = shortUrl(f.url);
    const key = `${f.functionName || '(anonymous)'} ${where}:${f.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + t);
    const pkg = where
      .split('/')
      .slice(0, where.startsWith('@') ? 2 : 1)
      .join('/');
    byFile.set(pkg, (byFile.get(pkg) ?? 0) + t);
    // Inclusive time: count the sample once for each named function on its stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = byId.get(cur)!.callFrame.functionName;
      if (inclusiveNames.includes(name) && !seen.has(name)) {
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + t);
      }
    }
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
  const top = (m: Map<string, number>, k: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k);
  process.stdout.write(`total ${(total / 1000).toFixed(0)} ms\n\nself time by function\n`);
  for (const [k, t] of top(byFunction, 40)) process.stdout.write(`${pct(t)}  ${k}\n`);
  process.stdout.write('\nself time by package or folder\n');
  for (const [k, t] of top(byFile, 15)) process.stdout.write(`${pct(t)}  ${k}\n`);
  const callers = process.env.CALLERS;
  if (callers) {
    // Stacks (innermost first, 6 deep) that end in the named function, by self time.
    const stacks = new Map<string, number>();
    for (const [id, t] of self) {
      if (byId.get(id)!.callFrame.functionName !== callers) continue;
      const names: string[] = [];
      for (
        let cur = parent.get(id);
        cur !== undefined && names.length < Number(process.env.DEPTH ?? 6);
        cur = parent.get(cur)
      ) {
        const f = byId.get(cur)!.callFrame;
        names.push(`${f.functionName || '(anon)'}@${shortUrl(f.url).split('/').pop()}`);
      }
      const key = names.join(' < ');
      stacks.set(key, (stacks.get(key) ?? 0) + t);
    }
    process.stdout.write(`\ncallers of ${callers}\n`);
    for (const [k, t] of top(stacks, 12)) process.stdout.write(`${pct(t)}  ${k}\n`);
  }
  if (inclusiveNames.length > 0) {
    process.stdout.write('\ninclusive\n');
    for (const name of inclusiveNames) {
      process.stdout.write(`${pct(inclusive.get(name) ?? 0)}  ${name}\n`);
    }
  }
}

main();
