// Schema and cross-reference validation: every preset field a staff member can get wrong is
// refused with FILE:LINE field: message, where LINE is the line they have to edit.
import t from 'tap';
import { join } from 'node:path';
import { checkPresets } from '../src/build.js';
import { formatProblem, PresetError, type Problem } from '../src/presets/problems.js';
import { lineContaining, presetCopy } from './support/presets.js';
import { cases } from './support/preset-cases.js';

const gpu = 'partitions/gpu.yml';
const pytorch = 'containers/pytorch.yml';
const site = 'site.yml';

async function problemsFor(dir: string): Promise<Problem[]> {
  try {
    await checkPresets(dir);
  } catch (error) {
    if (error instanceof PresetError) return error.problems;
    throw error;
  }
  return [];
}

t.test('the bundled example presets are valid', async (t) => {
  const { dir, cleanup } = await presetCopy();
  t.teardown(cleanup);
  t.same(await problemsFor(dir), []);
});

for (const c of cases) {
  t.test(`refused with file:line — ${c.name}`, async (t) => {
    const { dir, cleanup } = await presetCopy(c.edits);
    t.teardown(cleanup);
    const problems = await problemsFor(dir);
    const line = await lineContaining(dir, c.file, c.lineWith);
    const match = problems.find((p) => p.file.endsWith(join('presets', c.file)) && p.field === c.field);
    t.ok(match, `a problem for ${c.file} ${c.field || '(whole file)'}; got:\n${problems.map(formatProblem).join('\n')}`);
    if (!match) return;
    t.equal(match.line, line, `points at line ${line} (${c.lineWith})`);
    t.match(match.message, c.message);
    t.match(formatProblem(match), new RegExp(`presets/${c.file.replace('.', '\\.')}:${line} `), 'formatted as FILE:LINE');
  });
}

t.test('every problem is reported at once, not only the first', async (t) => {
  const { dir, cleanup } = await presetCopy([
    { file: gpu, from: '  max: 4\n', to: '  max: four\n' },
    { file: pytorch, from: 'jupyterlab: true', to: 'jupyterlab: maybe' },
    { file: site, from: 'proxyPrefix: node', to: 'proxyPrefix: proxy' },
  ]);
  t.teardown(cleanup);
  const fields = (await problemsFor(dir)).map((p) => p.field).sort();
  t.same(fields, ['gpus.max', 'jupyterlab', 'proxyPrefix']);
});
