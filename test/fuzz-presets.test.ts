// Stage 7, security: hostile and broken presets, one edit of the bundled ones each. Each is either
// refused with FILE:LINE (never a stack trace, never a crash) or, where the text is legal (a label
// with quotes and ERB-looking text, an image path with a space), built into an app whose templates
// real Ruby renders and real bash parses, with the text arriving as text.
import t from 'tap';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { buildApp, checkPresets } from '../src/build.js';
import { PresetError } from '../src/presets/problems.js';
import { cliPath, presetCopy, type Edit } from './support/presets.js';
import { renderLaunches } from './support/ood.js';

const CANARY = '/tmp/ood-jupyter-fuzz-canary';
await rm(CANARY, { force: true });
const gpu = 'partitions/gpu.yml';
const pytorch = 'containers/pytorch.yml';
const replace = (file: string, from: string, to: string): Edit => ({ file, from, to });
const add = (file: string, text: string): Edit => ({ file, from: null, to: text });
const minimal = 'label: X\nmemoryGb: {default: 1, max: 2}\nhours: {default: 1, max: 2}\ncores: {default: 1, max: 2}\n';
const bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...Array.from({ length: 8 }, (_, i) =>
  `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`)].join('\n');

interface Fuzz { name: string; edits: Edit[]; refusedIn?: string }
const refused: Fuzz[] = [
  { name: 'partition file name with a space', edits: [add('partitions/my gpu.yml', minimal)], refusedIn: 'partitions/my gpu.yml' },
  { name: 'partition file name with a quote', edits: [add("partitions/it's.yml", minimal)], refusedIn: "partitions/it's.yml" },
  { name: 'partition file name in unicode', edits: [add('partitions/gpü.yml', minimal)], refusedIn: 'partitions/gpü.yml' },
  { name: 'container file name with $(…)', edits: [add(`containers/$(touch ${CANARY.slice(5)}).yml`, 'label: X\nimage: /x.sif\njupyterlab: true\n')], refusedIn: 'containers/$(touch ood-jupyter-fuzz-canary).yml' },
  { name: 'a label of 81 characters', edits: [replace(gpu, 'label: GPU (A100)', `label: ${'x'.repeat(81)}`)], refusedIn: gpu },
  { name: 'a label that is a list', edits: [replace(gpu, 'label: GPU (A100)', 'label: [a, b]')], refusedIn: gpu },
  { name: 'a billion GPUs', edits: [replace(gpu, '  max: 4\n', '  max: 1000000000\n')], refusedIn: gpu },
  { name: 'memory written 1e9', edits: [replace(gpu, '  max: 480', '  max: 1e9')], refusedIn: gpu },
  { name: 'half an hour', edits: [replace(gpu, 'hours:\n  default: 2', 'hours:\n  default: 0.5')], refusedIn: gpu },
  { name: 'negative cores', edits: [replace(gpu, 'cores:\n  default: 8', 'cores:\n  default: -8')], refusedIn: gpu },
  { name: 'cores as a string', edits: [replace(gpu, '  max: 64', '  max: "64"')], refusedIn: gpu },
  { name: 'infinite memory (.inf)', edits: [replace(gpu, '  max: 480', '  max: .inf')], refusedIn: gpu },
  { name: 'a description of 1 MB', edits: [replace(gpu, 'description: Nodes with 4 NVIDIA A100 GPUs; up to 8 hours.', `description: ${'x'.repeat(1_000_000)}`)], refusedIn: gpu },
  { name: 'a duplicated key', edits: [replace(gpu, 'label: GPU (A100)', 'label: GPU (A100)\nlabel: Other')], refusedIn: gpu },
  { name: 'a partition listed twice in site.yml', edits: [replace('site.yml', '  - cpu\n', '  - cpu\n  - cpu\n')], refusedIn: 'site.yml' },
  { name: 'the same partition as .yml and .yaml', edits: [add('partitions/gpu.yaml', minimal)], refusedIn: 'partitions/gpu.yaml' },
  { name: 'partitions that differ only in case', edits: [add('partitions/GPU.yml', minimal)], refusedIn: 'partitions/gpu.yml' },
  { name: 'a YAML anchor and alias (valid otherwise)', edits: [replace(gpu, 'memoryGb:', 'memoryGb: &limits'), replace(gpu, 'hours:\n  default: 2\n  max: 8', 'hours: *limits')], refusedIn: gpu },
  { name: 'a billion-laughs bomb', edits: [replace(gpu, 'label: GPU (A100)', `label: GPU (A100)\n${bomb}`)], refusedIn: gpu },
  { name: 'a Python object tag', edits: [replace(gpu, 'label: GPU (A100)', 'label: !!python/object/apply:os.system ["touch /tmp/x"]')], refusedIn: gpu },
  { name: 'a JavaScript function tag', edits: [replace(gpu, 'label: GPU (A100)', 'label: !!js/function "function () { return 1 }"')], refusedIn: gpu },
  { name: 'an empty partition file', edits: [add('partitions/empty.yml', '')], refusedIn: 'partitions/empty.yml' },
  { name: 'a partition file that is a list', edits: [add('partitions/list.yml', '- a\n- b\n')], refusedIn: 'partitions/list.yml' },
  { name: 'a partition file of binary bytes', edits: [add('partitions/bin.yml', '\u0000\u0001\u0002\uFFFD\u0007label: x')], refusedIn: 'partitions/bin.yml' },
  { name: 'an sbatch argument with a newline', edits: [replace(gpu, '--qos=interactive', '"--qos=a\\n--wrap=reboot"')], refusedIn: gpu },
  { name: 'a cluster id in unicode', edits: [replace('site.yml', 'cluster: example', 'cluster: exämple')], refusedIn: 'site.yml' },
  { name: 'an env name with $', edits: [replace(pytorch, 'jupyterlab: true', 'jupyterlab: true\nenv:\n  "A$(x)": "1"')], refusedIn: pytorch },
  { name: 'an env value with a newline', edits: [replace(pytorch, 'jupyterlab: true', 'jupyterlab: true\nenv:\n  A: "1\\nB=2"')], refusedIn: pytorch },
];
// Legal text in fields that reach the form, the card and the job: it must arrive as text.
const hostileLabel = `it's "quoted" $(touch ${CANARY}) \`touch ${CANARY}\` <%= \`touch ${CANARY}\` %> [%= x %] #{x} %{value} ünïcødé \u202eRTL`;
const accepted: Fuzz[] = [
  { name: 'a partition label with quotes, ERB and shell text', edits: [replace(gpu, 'label: GPU (A100)', `label: ${JSON.stringify(hostileLabel.slice(0, 80))}`)] },
  { name: 'a description with ERB, shell text and newlines', edits: [replace(gpu, 'description: Nodes with 4 NVIDIA A100 GPUs; up to 8 hours.', `description: ${JSON.stringify(`line one\n<%= \`touch ${CANARY}\` %>\n$(touch ${CANARY})`)}`)] },
  { name: 'a container label with quotes and ERB', edits: [replace(pytorch, 'label: PyTorch 2.5 (CUDA 12.4)', `label: ${JSON.stringify(hostileLabel.slice(0, 80))}`)] },
  { name: 'an image path with a space and a quote', edits: [replace(pytorch, 'image: /project/containers/pytorch-2.5-cuda12.4-jupyterlab.sif', `image: "/project/my containers/it's $(touch ${CANARY.slice(5)}).sif"`)] },
  { name: 'an env value with quotes and $(…)', edits: [replace(pytorch, 'jupyterlab: true', `jupyterlab: true\nenv:\n  LAB_NOTE: ${JSON.stringify(`it's "x" $(touch ${CANARY}) \`y\``)}`)] },
  { name: 'a title with ERB and quotes', edits: [replace('site.yml', 'title: JupyterLab', `title: ${JSON.stringify(`Jupyter "<%= 1 %>" $(touch ${CANARY})`)}`)] },
];

t.test(`${refused.length} broken or hostile presets are refused with FILE:LINE, by validate and by the CLI`, async (t) => {
  for (const f of refused) {
    const { dir, cleanup } = await presetCopy(f.edits);
    let problems: PresetError['problems'] = [];
    try {
      await checkPresets(dir);
      t.fail(`${f.name}: refused`);
    } catch (error) {
      if (!(error instanceof PresetError)) {
        t.fail(`${f.name}: refused as a preset problem, not ${(error as Error).stack?.split('\n').slice(0, 2).join(' ')}`);
      } else problems = error.problems;
    }
    const mine = problems.filter((p) => p.file.endsWith(f.refusedIn!));
    t.ok(mine.length > 0 && mine.every((p) => p.line >= 1), `${f.name}: ${mine.map((p) => `${f.refusedIn}:${p.line} ${p.field} ${p.message}`).join('; ').slice(0, 200) || JSON.stringify(problems).slice(0, 200)}`);
    const out = join(dir, '..', 'app');
    const cli = await execa('node', [cliPath, 'build', '--presets', dir, '--out', out], { reject: false });
    t.equal(cli.exitCode, 1, `${f.name}: build exits 1`);
    t.notMatch(cli.stderr, /\n\s+at |TypeError|RangeError|SyntaxError/, `${f.name}: no stack trace`);
    t.notOk(existsSync(out), `${f.name}: nothing written`);
    await cleanup();
  }
  t.notOk(existsSync(CANARY), 'nothing ran');
});

t.test(`${accepted.length} presets with legal hostile text build an app that real Ruby renders and real bash parses`, async (t) => {
  const built: Array<{ f: Fuzz; appDir: string; cleanup: () => Promise<void> }> = [];
  for (const f of accepted) {
    const { dir, cleanup } = await presetCopy(f.edits);
    const appDir = join(dir, '..', 'app');
    await buildApp(dir, appDir);
    built.push({ f, appDir, cleanup });
    const form = load(await readFile(join(appDir, 'form.yml'), 'utf8')) as { attributes: Record<string, { options?: Array<[string, string]> }> };
    t.ok(form.attributes.slurm_partition?.options?.length, `${f.name}: form.yml is YAML`);
  }
  for (const { f, appDir, cleanup } of built) {
    const stagedRoot = join(appDir, '..', 'staged');
    await mkdir(stagedRoot, { recursive: true });
    const [r] = await renderLaunches(appDir, [{ values: { slurm_partition: 'gpu', container: 'pytorch', num_gpus: '1', num_cores: '8', memory_gb: '32', bc_num_hours: '2', working_dir: '', extra_binds: '', auto_accounts: 'lab' }, stagedRoot }], { scheduler: { accounts: ['lab'] } });
    t.ok(r!.ok, `${f.name}: a launch renders (${r!.error ?? ''})`);
    for (const script of ['settings.sh', 'before.sh', 'script.sh', 'after.sh']) {
      const parsed = await execa('bash', ['-n', join(stagedRoot, script)], { reject: false });
      t.equal(parsed.exitCode, 0, `${f.name}: bash -n ${script} ${parsed.stderr}`);
    }
    const read = await execa('bash', ['--norc', '-c', 'source ./settings.sh && printf "%s\\0" "$image" "${container_env[@]}"'], { cwd: stagedRoot, reject: false });
    t.equal(read.exitCode, 0, `${f.name}: settings.sh sources`);
    if (f.name.startsWith('an image path')) t.equal(read.stdout.split('\0')[0], `/project/my containers/it's $(touch ${CANARY.slice(5)}).sif`, 'the image path, exactly');
    if (f.name.startsWith('an env value')) t.equal(read.stdout.split('\0')[1], `LAB_NOTE=it's "x" $(touch ${CANARY}) \`y\``, 'the variable, exactly');
    await cleanup();
  }
  t.notOk(existsSync(CANARY), 'no preset text ran anything');
});
