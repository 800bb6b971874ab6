// Part of `npm run build`: tsc compiles src/ to dist/ but copies no other files, so the
// console's page (plain HTML, CSS and JavaScript, no build step of its own) is copied here.
import { cpSync, rmSync } from 'node:fs';

const from = new URL('../src/console/page/', import.meta.url);
const to = new URL('../dist/console/page/', import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
