// The one place preset text is quoted for the languages of the emitted files.
// Researcher values are quoted at launch by Ruby (Shellwords.escape, to_json) in the templates;
// these helpers quote what staff wrote in the presets, at build time.

/** A bash word meaning exactly `value`: single-quoted, each ' written as '\''. */
export function bashWord(value: string | number): string {
  const text = String(value);
  if (/^[A-Za-z0-9_.,:\/=+-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * A JSON value that is also a YAML flow scalar. `<`, `>` and `&` are written as \u escapes so
 * the text can sit inside ERB code or HTML without opening or closing a tag.
 */
export function jsonValue(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A JSON object with one entry per line: how tables of presets stay readable in emitted files. */
export function jsonTable(table: Record<string, unknown> | null, indent = ''): string {
  if (table === null) return 'null';
  const rows = Object.entries(table).map(([key, value]) => `${indent}  ${jsonValue(key)}: ${jsonValue(value)}`);
  return `{\n${rows.join(',\n')}\n${indent}}`;
}

/**
 * What EJS applies to every `[%= %]` output of a file that OOD renders with ERB: a `<%` from a
 * preset must stay text, so it becomes ERB's literal `<%%`.
 */
export function erbLiteral(text: unknown): string {
  return String(text).replaceAll('<%', '<%%');
}
