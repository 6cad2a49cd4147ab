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
