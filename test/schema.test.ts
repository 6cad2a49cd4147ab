// `ood-jupyter schema`: the JSON Schemas editors use, checked with a real JSON Schema validator (Ajv,
// draft 2020-12): the bundled presets pass, the broken presets of the preset tests that a schema can
// express are refused, and the committed form-presets/schema/ files are what the command writes.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { jsonSchemaFiles, presetKinds, schemaModeline, type PresetKind } from '../src/presets/json-schema.js';
import { bundledPresets } from './support/presets.js';
import { presetCopy } from './support/presets.js';
import { cases } from './support/preset-cases.js';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const validators = Object.fromEntries((Object.keys(presetKinds) as PresetKind[]).map((kind) => {
  const file = jsonSchemaFiles().find((f) => f.file === presetKinds[kind].file)!;
  return [kind, ajv.compile(JSON.parse(file.content) as object)];
})) as Record<PresetKind, ReturnType<typeof ajv.compile>>;

const kindOf = (file: string): PresetKind => (file === 'site.yml' ? 'site' : file.startsWith('partitions/') ? 'partition' : 'container');
const bundledFiles = ['site.yml', 'partitions/gpu.yml', 'partitions/gpu-large.yml', 'partitions/cpu.yml',
  'containers/pytorch.yml', 'containers/tensorflow.yml', 'containers/datascience.yml'];

t.test('the committed schemas are what `ood-jupyter schema` writes', async (t) => {
  for (const { file, content } of jsonSchemaFiles()) {
    t.equal(await readFile(join(bundledPresets, 'schema', file), 'utf8'), content, `form-presets/schema/${file} (run: npm run build && node dist/cli.js schema --out form-presets/schema)`);
  }
});

t.test('the bundled presets pass, and each names its schema on its first line', async (t) => {
  for (const file of bundledFiles) {
    const text = await readFile(join(bundledPresets, file), 'utf8');
    const validate = validators[kindOf(file)];
    t.ok(validate(load(text)), `${file}: ${ajv.errorsText(validate.errors)}`);
    t.equal(text.split('\n')[0], schemaModeline(kindOf(file)), `${file}: the yaml-language-server modeline`);
  }
});

// The broken presets a JSON Schema cannot refuse: checks across fields or files, and refinements
// (".." in a path, sbatch options the form owns, rnode). `ood-jupyter validate` refuses them.
const beyondSchema = new Set([
  'bind path with ..', 'rnode proxy prefix (it strips the path JupyterLab needs)', 'custom images allowed from nowhere',
  'partition order names a missing partition', 'partition order forgets a partition', 'several clusters, partition names none',
  'GPU minimum above max', 'GPU default above max', 'GPU type on a CPU partition', 'memory min above max',
  'hours default above max', 'cores default above max', 'cores per GPU on a CPU partition', 'default cores above the per-GPU share',
  'sbatch argument the form controls', 'unknown container name', 'container listed twice', 'default container not offered',
  'partition on an unknown cluster', 'container named like the custom-image choice',
  'partition names the browser cannot tell apart', 'YAML syntax error',
]);

t.test('the broken presets a schema can express are refused by it', async (t) => {
  t.equal(cases.filter((c) => beyondSchema.has(c.name)).length, beyondSchema.size, 'every name above is one of the cases');
  for (const c of cases.filter((c) => !beyondSchema.has(c.name))) {
    const { dir, cleanup } = await presetCopy(c.edits);
    const edited = c.edits[0]!.file;
    const validate = validators[kindOf(edited)];
    t.notOk(validate(load(await readFile(join(dir, edited), 'utf8'))), `${c.name}: refused (${ajv.errorsText(validate.errors)})`);
    await cleanup();
  }
});
