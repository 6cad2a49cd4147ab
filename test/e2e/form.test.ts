// The generated form.js in Debian's Chromium, on the form page as Open OnDemand's dashboard renders it
// (test/e2e/support/form-page.ts), for the bundled presets. With bc_dynamic_js off (the default on every
// OOD release so far): the partition's limits, defaults, GPU field, container list and own-image field;
// remembered values kept when they fit; the submit.yml.erb sentence under a wrong field and a Launch that
// explains itself; launch links. With it on: form.js leaves the form to OOD's own script.
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Page } from 'playwright-core';
import { buildApp } from '../../src/build.js';
import { bundledPresets } from '../support/presets.js';
import { artifactsDir, chromiumAvailable, launchBrowser } from './support/browser.js';
import { formPage, serveForm } from './support/form-page.js';
import { requireOrExit } from './support/node.js';

requireOrExit(t, chromiumAvailable() ? null : 'Chromium is not installed (apt-get install chromium)', 'the form suite');

const parent = await mkdtemp(join(tmpdir(), 'ood-jupyter-form-'));
const appDir = join(parent, 'jupyter-apptainer');
await buildApp(bundledPresets, appDir);
const server = await serveForm();
const browser = await launchBrowser();
t.teardown(async () => { await browser.close(); await server.close(); await rm(parent, { recursive: true, force: true }); });

const el = (id: string) => `#batch_connect_session_context_${id}`;

async function open(options: Parameters<typeof formPage>[1], query = ''): Promise<{ page: Page; errors: string[] }> {
  server.setPage(await formPage(appDir, options));
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${server.url}${query}`);
  return { page, errors };
}

const state = (page: Page) => page.evaluate(() => {
  const f = (id: string) => document.getElementById(`batch_connect_session_context_${id}`) as HTMLInputElement | HTMLSelectElement;
  const shown = (id: string) => f(id).checkVisibility();
  const number = (id: string) => ({ value: f(id).value, min: (f(id) as HTMLInputElement).min, max: (f(id) as HTMLInputElement).max });
  return {
    gpus: { ...number('num_gpus'), shown: shown('num_gpus') }, cores: number('num_cores'), memory: number('memory_gb'), hours: number('bc_num_hours'),
    container: f('container').value,
    offered: Array.from((f('container') as HTMLSelectElement).options).filter((o) => !o.hidden && !o.disabled).map((o) => o.value),
    customShown: shown('custom_image'),
    problems: Array.from(document.querySelectorAll('.invalid-feedback')).map((n) => `${n.id.replace('batch_connect_session_context_', '').replace('_problem', '')}: ${n.textContent}`),
    notice: document.getElementById('ood_jupyter_link_notice')?.textContent ?? null,
  };
});

t.test('bc_dynamic_js off: each partition sets its limits, defaults, GPU field and containers', async (t) => {
  const { page, errors } = await open({ dynamicJs: false });
  t.teardown(() => page.close());
  // The bundled presets (form-presets/), by hand: gpu 1–4 GPUs, 1–64 cores, 1–480 GB, 1–8 h (defaults 1, 8, 32, 2);
  // gpu-large 1–8, 1–112, 1–1900, 1–48 (defaults 2, 16, 128, 4); cpu: no GPUs, 1–32, 1–250, 1–24 (defaults 4, 8, 4).
  let s = await state(page);
  t.same([s.gpus, s.cores, s.memory, s.hours], [
    { value: '1', min: '1', max: '4', shown: true }, { value: '8', min: '1', max: '64' }, { value: '32', min: '1', max: '480' }, { value: '2', min: '1', max: '8' },
  ], 'the first partition (gpu) at load');
  t.same(s.offered, ['datascience', 'pytorch', 'tensorflow', 'custom']);
  t.equal(s.customShown, false, 'the own-image field hides unless "Your own image" is chosen');

  await page.selectOption(el('slurm_partition'), 'cpu');
  s = await state(page);
  t.equal(s.gpus.shown, false, 'no GPU field on the CPU partition');
  t.equal(s.gpus.value, '0');
  t.same([s.cores.max, s.memory.max, s.hours.max], ['32', '250', '24'], 'the CPU partition\'s limits');
  t.same([s.cores.value, s.memory.value, s.hours.value], ['8', '32', '2'], 'values that fit the new partition are kept');
  t.same(s.offered, ['datascience', 'pytorch', 'custom'], 'TensorFlow is not offered on cpu');

  await page.selectOption(el('slurm_partition'), 'gpu-large');
  s = await state(page);
  t.equal(s.gpus.shown, true);
  t.same([s.gpus.value, s.gpus.max], ['2', '8'], '0 GPUs do not fit gpu-large: its default, 2');
  t.same(s.offered, ['pytorch', 'tensorflow', 'custom'], 'gpu-large offers PyTorch and TensorFlow');
  t.equal(s.container, 'pytorch', 'a container the partition does not offer is replaced by its default');

  await page.fill(el('memory_gb'), '1500');
  await page.selectOption(el('slurm_partition'), 'gpu');
  s = await state(page);
  t.equal(s.memory.value, '32', 'a value over the new partition\'s limit becomes its default');

  await page.selectOption(el('container'), 'custom');
  s = await state(page);
  t.equal(s.customShown, true, 'the own-image field appears for "Your own image"');
  t.same(s.problems, [], 'empty, it is not an error yet: the researcher has not typed anything');
  await page.screenshot({ path: join(artifactsDir, 'form-dynamic-js-off.png'), fullPage: true });
  const before = server.launches.length;
  await page.click('input[type="submit"]');
  t.match((await state(page)).problems, [/^custom_image: Please enter your container image \(a \.sif file under \/project\/containers\/, /], 'after Launch it is');
  t.equal(server.launches.length, before, 'nothing was launched');
  t.same(errors, [], 'no script error');
});

t.test('remembered values that fit the partition are kept at load; others give way to its defaults', async (t) => {
  const { page } = await open({ dynamicJs: false, remembered: { slurm_partition: 'cpu', num_gpus: '2', num_cores: '30', memory_gb: '300', bc_num_hours: '20', container: 'tensorflow' } });
  t.teardown(() => page.close());
  const s = await state(page);
  t.same([s.gpus.value, s.gpus.shown], ['0', false], 'cpu: no GPUs');
  t.equal(s.cores.value, '30', '30 cores fit cpu (max 32): kept');
  t.equal(s.memory.value, '8', '300 GB does not (max 250): cpu\'s default');
  t.equal(s.hours.value, '20', 'kept');
  t.equal(s.container, 'datascience', 'TensorFlow is not offered on cpu: its default container');
});

t.test('a wrong value shows submit.yml.erb\'s sentence under the field, and Launch explains itself', async (t) => {
  const { page } = await open({ dynamicJs: false });
  t.teardown(() => page.close());
  const before = server.launches.length;
  await page.fill(el('num_gpus'), '9');
  let s = await state(page);
  t.same(s.problems, ['num_gpus: GPUs on the GPU (A100) partition must be between 1 and 4; you asked for 9.'], 'the sentence under the field, as the researcher types');
  // Over the field's max: the browser's own check stops the launch before any submit event.
  await page.click('input[type="submit"]');
  t.equal(await page.textContent('#ood_jupyter_launch_problem'),
    'Nothing was launched: GPUs on the GPU (A100) partition must be between 1 and 4; you asked for 9. Correct it and click Launch again.',
    'a value over the field\'s max: the same sentence above Launch, not only the browser\'s bubble');
  await page.fill(el('num_cores'), '40');
  await page.fill(el('num_gpus'), '2');
  s = await state(page);
  t.same(s.problems, ['num_cores: With 2 GPU(s) on the GPU (A100) partition you may use at most 32 CPU cores (16 per GPU); you asked for 40.']);
  await page.click('input[type="submit"]');
  const summary = await page.textContent('#ood_jupyter_launch_problem');
  t.equal(summary, 'Nothing was launched: With 2 GPU(s) on the GPU (A100) partition you may use at most 32 CPU cores (16 per GPU); you asked for 40. Correct it and click Launch again.');
  t.equal(await page.evaluate(() => document.activeElement?.id), 'batch_connect_session_context_num_cores', 'the field to correct has the focus');
  await page.screenshot({ path: join(artifactsDir, 'form-blocked-launch.png'), fullPage: true });
  t.equal(server.launches.length, before, 'nothing was submitted');

  await page.fill(el('num_cores'), '16');
  t.same((await state(page)).problems, [], 'corrected: the sentence goes');
  await Promise.all([page.waitForURL(/\/launch$/), page.click('input[type="submit"]')]);
  t.equal(server.launches.length, before + 1, 'Launch submits');
  t.match(server.launches.at(-1), /batch_connect_session_context%5Bnum_cores%5D=16/);
});

t.test('a launch link fills the form with what fits and says what it did not use', async (t) => {
  const { page, errors } = await open({ dynamicJs: false }, '?slurm_partition=gpu-large&num_gpus=6&container=tensorflow&memory_gb=5000&bc_num_hours=12&colour=blue&extra_binds=/etc');
  t.teardown(() => page.close());
  const s = await state(page);
  t.same([s.gpus.value, s.container, s.hours.value], ['6', 'tensorflow', '12'], 'partition, GPUs, container and hours from the link');
  t.equal(s.memory.value, '32', 'memory 5000 does not fit gpu-large: the value it had stays');
  t.equal(s.notice, 'Filled in from the link: Partition, Container, GPUs, Hours. Not used from the link: Memory (GB) "5000" (Memory (GB) on the Large GPU (H100) partition must be between 1 and 1900; you asked for 5000); "colour" (this form has no such field); "extra_binds" (extra bind paths are never taken from a link).');
  await page.screenshot({ path: join(artifactsDir, 'form-launch-link.png'), fullPage: true });
  t.same(errors, []);

  const bad = await open({ dynamicJs: false }, '?slurm_partition=nowhere&container=pytorch');
  t.teardown(() => bad.page.close());
  const b = await state(bad.page);
  t.match(b.notice, /^Filled in from the link: Container\. Not used from the link: Partition "nowhere" \(Please choose one of the listed partitions \("nowhere" is not one of them\)\)\.$/);
});

t.test('bc_dynamic_js on: form.js leaves limits, hiding and containers to OOD\'s own script', async (t) => {
  const { page, errors } = await open({ dynamicJs: true, remembered: { slurm_partition: 'cpu', num_gpus: '3' } });
  t.teardown(() => page.close());
  const s = await state(page);
  // form.yml's static bounds and the remembered values stay as the dashboard rendered them.
  t.same([s.gpus.value, s.gpus.min, s.gpus.max, s.gpus.shown], ['3', '0', '8', true], 'no bounds set, no field hidden by form.js');
  t.same(s.offered, ['datascience', 'pytorch', 'tensorflow', 'custom'], 'no container hidden by form.js');
  t.same(s.problems, ['num_gpus: The CPU only partition has no GPUs: set GPUs to 0, or choose a partition with GPUs.'], 'the sentences still show (they fight nothing)');
  t.same(errors, []);
});

t.test('a dashboard older than 3.1 (no #ood_config) counts as bc_dynamic_js off', async (t) => {
  const { page } = await open({ dynamicJs: null });
  t.teardown(() => page.close());
  await page.selectOption(el('slurm_partition'), 'cpu');
  t.equal((await state(page)).gpus.shown, false);
});

// OOD's own dynamic_forms.js, where an OOD source checkout is at hand (OOD_DASHBOARD_GIT: the git
// directory of OSC/ondemand; the dashboard's scripts are not published as a package, so CI has none):
// the directives form.yml writes do what they should under the real script of each release, and
// form.js and that script together give the researcher one consistent form.
const oodGit = process.env.OOD_DASHBOARD_GIT;
const jquery = '/usr/share/javascript/jquery/jquery.js';
t.test('bc_dynamic_js on, with OOD\'s own dynamic_forms.js of each release', { skip: !oodGit ? 'OOD_DASHBOARD_GIT is not set (an OSC/ondemand git directory)' : !existsSync(jquery) ? `no ${jquery} (apt-get install libjs-jquery)` : false }, async (t) => {
  const git = (...args: string[]) => execa('git', ['--git-dir', oodGit!, ...args]).then((r) => r.stdout);
  const tags = (await git('tag')).split('\n');
  const latest = (prefix: string) => tags.filter((tag) => tag.startsWith(prefix) && /^v\d+\.\d+\.\d+$/.test(tag))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
  const refs = [...new Set([latest('v3.1.'), latest('v4.0.'), latest('v4.')].filter((r): r is string => !!r))];
  server.addScript('/assets/jquery.js', await readFile(jquery, 'utf8'));
  for (const ref of refs) {
    await t.test(`OOD ${ref}`, async (t) => {
      const modules = await Promise.all(['config', 'utils', 'dynamic_forms'].map(async (name): Promise<[string, string]> =>
        [name, await git('show', `${ref}:apps/dashboard/app/javascript/${name}.js`)]));
      const markup = ref.startsWith('v3.') ? 'bootstrap4' : ref.startsWith('v4.0.') ? 'bootstrap5' : 'wrapped';
      const { page, errors } = await open({ dynamicJs: true, markup, ood: { modules, jquery: '/assets/jquery.js' } });
      t.teardown(() => page.close());
      await page.waitForFunction(() => (window as unknown as { jQuery?: { isReady: boolean } }).jQuery?.isReady);
      // OOD's handlers are made in a jQuery ready callback, which jQuery runs asynchronously.
      await page.waitForFunction(() => (document.getElementById('batch_connect_session_context_num_gpus') as HTMLInputElement).max === '4');
      // What OOD's script makes of form.yml's directives, and what form.js adds (the sentences, Launch).
      let s = await state(page);
      t.same([s.gpus, s.cores, s.memory, s.hours], [
        { value: '1', min: '1', max: '4', shown: true }, { value: '8', min: '1', max: '64' }, { value: '32', min: '1', max: '480' }, { value: '2', min: '1', max: '8' },
      ], 'gpu at load: its limits');
      t.same(s.offered, ['datascience', 'pytorch', 'tensorflow', 'custom']);
      t.equal(s.customShown, false, 'no own-image field for a listed container');
      await page.selectOption(el('slurm_partition'), 'cpu');
      s = await state(page);
      t.same([s.gpus.shown, s.gpus.value], [false, '0'], 'cpu: the GPU field hidden, 0 GPUs');
      t.same([s.cores.max, s.memory.max, s.hours.max], ['32', '250', '24'], 'cpu\'s limits');
      t.same(s.offered, ['datascience', 'pytorch', 'custom'], 'TensorFlow is not offered on cpu');
      t.same(s.problems, [], 'no sentence for a hidden field');
      await page.selectOption(el('slurm_partition'), 'gpu-large');
      s = await state(page);
      t.same([s.gpus.shown, s.gpus.max, s.memory.max], [true, '8', '1900'], 'gpu-large: GPUs again, its limits');
      t.same(s.offered, ['pytorch', 'tensorflow', 'custom']);
      await page.selectOption(el('container'), 'custom');
      t.equal((await state(page)).customShown, true, 'the own-image field for "Your own image"');
      await page.screenshot({ path: join(artifactsDir, `form-dynamic-js-on-${ref}.png`), fullPage: true });
      await page.selectOption(el('container'), 'pytorch');
      await page.fill(el('num_gpus'), '9');
      s = await state(page);
      t.same(s.problems, ['num_gpus: GPUs on the Large GPU (H100) partition must be between 1 and 8; you asked for 9.'], 'form.js\'s sentence under the field');
      const before = server.launches.length;
      await page.click('input[type="submit"]');
      t.match(await page.textContent('#ood_jupyter_launch_problem'), /^Nothing was launched: GPUs on the Large GPU/, 'Launch explains itself');
      t.equal(server.launches.length, before, 'nothing was submitted');
      t.same(errors, []);
    });
  }
});
