// The preset files' JSON Schemas, made from the zod schemas (schema.ts) that validate them, for
// staff editors: a YAML language server validates and completes a preset file whose first lines
// name its schema (`# yaml-language-server: $schema=…`). Fields with a default are optional here,
// as they are in the files; checks a JSON Schema cannot say (cross-file ones, "..", the sbatch
// options the form owns) stay with `ood-jupyter validate`.
import { z } from 'zod';
import { containerSchema, partitionSchema, siteSchema } from './schema.js';

export const presetKinds = {
  site: { schema: siteSchema, file: 'site.schema.json', title: 'ood-jupyter site.yml', fromPreset: 'schema/site.schema.json' },
  partition: { schema: partitionSchema, file: 'partition.schema.json', title: 'ood-jupyter partitions/<name>.yml', fromPreset: '../schema/partition.schema.json' },
  container: { schema: containerSchema, file: 'container.schema.json', title: 'ood-jupyter containers/<name>.yml', fromPreset: '../schema/container.schema.json' },
} as const;

export type PresetKind = keyof typeof presetKinds;

/** The JSON Schema (draft 2020-12) of one kind of preset file. */
export function jsonSchema(kind: PresetKind): Record<string, unknown> {
  const { schema, title } = presetKinds[kind];
  return { title, ...z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) };
}

/** The schema files, as `ood-jupyter schema` writes them (form-presets/schema/ holds the bundled ones). */
export const jsonSchemaFiles = (): Array<{ file: string; content: string }> =>
  (Object.keys(presetKinds) as PresetKind[]).map((kind) => ({ file: presetKinds[kind].file, content: `${JSON.stringify(jsonSchema(kind), null, 2)}\n` }));

/** The first line of a preset file that points editors at its schema, from a preset directory with schema/ in it. */
export const schemaModeline = (kind: PresetKind) => `# yaml-language-server: $schema=${presetKinds[kind].fromPreset}`;
