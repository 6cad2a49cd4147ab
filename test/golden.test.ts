// Golden files: the bundled example presets build to the committed, reviewed snapshot, byte for byte.
// After an intended change to a template, regenerate with `npx tap --snapshot test/golden.test.ts`,
// read the diff of tap-snapshots/ like any code change, and commit it with the template change.
import t from 'tap';
import { renderFromPresets } from '../src/build.js';
import { bundledPresets } from './support/presets.js';

t.test('bundled presets render to the reviewed snapshot', async (t) => {
  const files = await renderFromPresets(bundledPresets);
  t.matchSnapshot(files.map((f) => `${f.path} ${f.mode.toString(8)}`).join('\n'), 'file list and modes');
  for (const file of files) t.matchSnapshot(file.content, file.path);
});

t.test('the same presets always render the same bytes (no timestamps, no ordering noise)', async (t) => {
  const [first, second] = await Promise.all([renderFromPresets(bundledPresets), renderFromPresets(bundledPresets)]);
  t.same(first, second);
});

t.test('no EJS tag survives into an emitted file, and templates never insert raw output', async (t) => {
  const { readdir, readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { defaultTemplateDir } = await import('../src/render/render.js');
  const walk = async (dir: string): Promise<string[]> => (await Promise.all((await readdir(dir, { withFileTypes: true }))
    .map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])))).flat();
  for (const source of await walk(defaultTemplateDir)) {
    t.notMatch(await readFile(source, 'utf8'), /\[%-/, `${source}: [%- would insert unescaped text`);
  }
  for (const file of await renderFromPresets(bundledPresets)) {
    t.notMatch(file.content, /\[%|%\]/, `${file.path} has no leftover EJS tag`);
  }
});

t.test('every message the job scripts print is defined in messages.sh', async (t) => {
  const files = await renderFromPresets(bundledPresets);
  const defined = new Set([...files.find((f) => f.path === 'template/messages.sh')!.content.matchAll(/^(msg_\w+)=/gm)].map((m) => m[1]));
  const used = new Set(files.filter((f) => f.path.startsWith('template/')).flatMap((f) => [...f.content.matchAll(/\$\{?(msg_\w+)/g)].map((m) => m[1])));
  t.ok(used.size >= 10, `the scripts use the messages (${used.size})`);
  for (const name of used) t.ok(defined.has(name), `${name} is defined`);
});

t.test('the form keeps remembered values: no data-set-* (OOD applies them at page load), limits by data-min/max', async (t) => {
  const form = (await renderFromPresets(bundledPresets)).find((f) => f.path === 'form.yml')!.content;
  t.notMatch(form, /^\s+data-set-/m, 'no data-set-* directive on any option of form.yml');
  t.match(form, /data-max-num-gpus: 4/);
  t.match(form, /data-min-memory-gb: /);
  t.match(form, /^# data-help-num-gpus .* needs OOD 4\.1 or later;$/m, 'the header says which directive needs OOD 4.1');
});
