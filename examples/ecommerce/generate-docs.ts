import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exampleDocs } from './docs.js';

/**
 * Writes the example's generated documentation (`npm run docs:generate`): docs/asyncapi.yaml,
 * docs/topology.svg and docs/topology.md. See {@link exampleDocs}.
 */
const root = new URL('../../', import.meta.url);
for (const doc of await exampleDocs()) {
  const file = fileURLToPath(new URL(doc.path, root));
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, doc.text);
  console.log(`wrote ${doc.path}`);
}
