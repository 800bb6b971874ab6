/**
 * Writes a JSON value as YAML 1.2, block style, two-space indent: just enough for AsyncAPI
 * documents, so that Tidings needs no YAML library. Strings are plain where that is unambiguous
 * and JSON-quoted otherwise (a JSON string is a valid YAML double-quoted scalar).
 */
export function toYaml(value: unknown): string {
  return `${block(value, 0).replace(/^\n/, '')}\n`;
}

/** A value placed after `key:` or `- `: inline when a scalar or empty, else on its own lines. */
function block(value: unknown, indent: number): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return ' []';
    return value.map((item) => `\n${pad(indent)}-${listItem(item, indent + 2)}`).join('');
  }
  if (isObject(value)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return ' {}';
    return entries.map(([k, v]) => `\n${pad(indent)}${scalar(k)}:${block(v, indent + 2)}`).join('');
  }
  return ` ${scalar(value)}`;
}

/** A list item: an object's first key goes on the dash's line, the rest under it. */
function listItem(item: unknown, indent: number): string {
  if (isObject(item) && Object.keys(item).length > 0) {
    return ` ${block(item, indent).slice(indent + 1)}`;
  }
  if (Array.isArray(item) && item.length > 0) return block(item, indent);
  return block(item, indent);
}

const RESERVED = /^(?:true|false|null|yes|no|on|off|y|n|~)$/i;
const PLAIN = /^[A-Za-z_$][A-Za-z0-9 _.,;()/+=<>'-]*$/;

function scalar(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  const text = String(value);
  const plain = PLAIN.test(text) && !text.endsWith(' ') && !RESERVED.test(text);
  return plain ? text : JSON.stringify(text);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pad(n: number): string {
  return ' '.repeat(n);
}
