// The generated app rendered as Open OnDemand renders it, with real CRuby ERB (test/support/ood-dashboard.rb):
// a matrix of form values through submit.yml.erb and the staged templates. Every accepted launch must give
// sbatch exactly the partition's resources; every value outside the partition's limits must be refused
// with a sentence, before anything is submitted; hostile text must stay text.
import t from 'tap';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultJobName, renderLaunches, renderViews, runDashboard, sbatchArgs, type LaunchRequest, type LaunchResult, type ViewsResult } from './support/ood.js';
import { rubyDescription } from './support/ruby.js';
import { builtApp } from './support/app.js';

// The bundled example presets (form-presets/), written out here by hand so the expectations do not come
// from the code under test.
const partitions = {
  gpu: { label: 'GPU (A100)', gpus: [1, 4], gpuArg: (n: number) => `--gres=gpu:a100:${n}`, cores: [1, 64], perGpu: 16,
    memory: [1, 480], hours: [1, 8], extra: ['--qos=interactive'], containers: ['datascience', 'pytorch', 'tensorflow'] },
  'gpu-large': { label: 'Large GPU (H100)', gpus: [1, 8], gpuArg: (n: number) => `--gpus-per-node=h100:${n}`, cores: [1, 112], perGpu: 14,
    memory: [1, 1900], hours: [1, 48], extra: ['--constraint=h100'], containers: ['pytorch', 'tensorflow'] },
  cpu: { label: 'CPU only', gpus: [0, 0], gpuArg: null, cores: [1, 32], perGpu: null,
    memory: [1, 250], hours: [1, 24], extra: [], containers: ['datascience', 'pytorch'] },
} as const;
type PartitionName = keyof typeof partitions;
const allContainers = ['datascience', 'pytorch', 'tensorflow'];

const CANARY = '/tmp/ood-jupyter-canary';
const hostile = [
  `$(touch ${CANARY})`, `\`touch ${CANARY}\``, `'; touch ${CANARY}; '`, `"; touch ${CANARY}; "`, `a b "c" $(touch ${CANARY})`,
  `x; touch ${CANARY}`, `x | touch ${CANARY}`, `x && touch ${CANARY}`, `back\\slash\\`, 'line\nbreak', 'tab\there',
  `<%= \`touch ${CANARY}\` %>`, '--bind=/', '../../etc', 'ünïcødé 漢字 \u202eRTL', '#{`touch /tmp/x`}', '%{value}', 'x'.repeat(10_000),
];

interface Case {
  name: string;
  values: Record<string, string>;
  stage?: boolean;
  /** Accepted: what sbatch must get. Refused: the researcher's message. */
  expect: { queue: string; hours: number; native: string[] } | RegExp;
}

function valuesFor(partition: PartitionName, overrides: Record<string, string> = {}): Record<string, string> {
  const p = partitions[partition];
  return {
    slurm_partition: partition, container: p.containers.includes('pytorch' as never) ? 'pytorch' : p.containers[0]!,
    num_gpus: String(p.gpus[0]), num_cores: String(p.cores[0]), memory_gb: String(p.memory[0]), bc_num_hours: String(p.hours[0]),
    working_dir: '', extra_binds: '', custom_image: '', ...overrides,
  };
}

function expectedNative(partition: PartitionName, gpus: number, cores: number, memory: number): string[] {
  const p = partitions[partition];
  return ['--nodes=1', '--ntasks=1', `--cpus-per-task=${cores}`, `--mem=${memory}G`,
    ...(gpus > 0 && p.gpuArg ? [p.gpuArg(gpus)] : []), ...p.extra];
}

const cases: Case[] = [
  // The issue's own example, and its two refusals.
  { name: 'gpu, 2 GPUs, 32 GB, 4 h, 8 cores', values: valuesFor('gpu', { num_gpus: '2', memory_gb: '32', bc_num_hours: '4', num_cores: '8' }),
    expect: { queue: 'gpu', hours: 4, native: expectedNative('gpu', 2, 8, 32) } },
  { name: '5 GPUs on gpu', values: valuesFor('gpu', { num_gpus: '5' }),
    expect: /^GPUs on the GPU \(A100\) partition must be between 1 and 4; you asked for 5\.$/ },
  { name: 'a GPU on cpu', values: valuesFor('cpu', { num_gpus: '1' }),
    expect: /^The CPU only partition has no GPUs: set GPUs to 0, or choose a partition with GPUs\.$/ },
];

for (const name of Object.keys(partitions) as PartitionName[]) {
  const p = partitions[name];
  const maxCores = p.perGpu ? Math.min(p.cores[1], p.perGpu * p.gpus[1]) : p.cores[1];
  cases.push(
    { name: `${name} at every minimum`, values: valuesFor(name),
      expect: { queue: name, hours: p.hours[0], native: expectedNative(name, p.gpus[0], p.cores[0], p.memory[0]) } },
    { name: `${name} at every maximum`, values: valuesFor(name, { num_gpus: String(p.gpus[1]), num_cores: String(maxCores), memory_gb: String(p.memory[1]), bc_num_hours: String(p.hours[1]) }),
      expect: { queue: name, hours: p.hours[1], native: expectedNative(name, p.gpus[1], maxCores, p.memory[1]) } },
  );
  const fields = [['num_cores', 'CPU cores', p.cores], ['memory_gb', 'Memory \\(GB\\)', p.memory], ['bc_num_hours', 'Hours', p.hours],
    ...(p.gpus[1] > 0 ? [['num_gpus', 'GPUs', p.gpus]] as const : [])] as const;
  for (const [id, label, [min, max]] of fields) {
    for (const value of [min - 1, max + 1]) {
      cases.push({ name: `${name}: ${id} = ${value}`, values: valuesFor(name, { [id]: String(value) }),
        expect: new RegExp(`^${label} on the ${p.label.replace(/[()]/g, '\\$&')} partition must be between ${min} and ${max}; you asked for ${value}\\.$`) });
    }
    for (const value of ['abc', '1e3', '4.5', '-1', '0x10', '', ' ', '१२', ...hostile.slice(0, 3)]) {
      cases.push({ name: `${name}: ${id} = ${JSON.stringify(value).slice(0, 30)}`, values: valuesFor(name, { [id]: value }),
        expect: new RegExp(`^${label} must be a whole number; you entered "`) });
    }
  }
  for (const container of allContainers) {
    const offered = p.containers.includes(container as never);
    cases.push({ name: `${name} with container ${container}`, values: valuesFor(name, { container }),
      expect: offered ? { queue: name, hours: p.hours[0], native: expectedNative(name, p.gpus[0], p.cores[0], p.memory[0]) }
        : new RegExp(`^The .* container is not offered on the ${p.label.replace(/[()]/g, '\\$&')} partition\\. Please choose one of: `) });
  }
}

cases.push(
  { name: 'whitespace around a number is forgiven', values: valuesFor('gpu', { bc_num_hours: ' 4 ' }),
    expect: { queue: 'gpu', hours: 4, native: expectedNative('gpu', 1, 1, 1) } },
  { name: 'more cores than 16 per GPU', values: valuesFor('gpu', { num_gpus: '1', num_cores: '17' }),
    expect: /^With 1 GPU\(s\) on the GPU \(A100\) partition you may use at most 16 CPU cores \(16 per GPU\); you asked for 17\.$/ },
  { name: 'an unknown partition (crafted POST)', values: valuesFor('gpu', { slurm_partition: 'debug' }),
    expect: /^Please choose one of the listed partitions \("debug" is not one of them\)\.$/ },
  { name: 'an unknown container (crafted POST)', values: valuesFor('gpu', { container: 'ubuntu' }),
    expect: /^Please choose one of the listed containers \("ubuntu" is not one of them\)\.$/ },
  { name: 'a cluster that is not the partition\'s (crafted POST)', values: valuesFor('gpu', { cluster: 'other' }),
    expect: /^The GPU \(A100\) partition is not on the other cluster\./ },
  // The researcher's own image.
  { name: 'own image under an allowed directory', values: valuesFor('gpu', { container: 'custom', custom_image: '/project/containers/mine v2.sif' }), stage: true,
    expect: { queue: 'gpu', hours: 1, native: expectedNative('gpu', 1, 1, 1) } },
  { name: 'own image from docker://', values: valuesFor('gpu', { container: 'custom', custom_image: 'docker://ghcr.io/lab/jupyter:2025.1' }),
    expect: { queue: 'gpu', hours: 1, native: expectedNative('gpu', 1, 1, 1) } },
  { name: 'own image missing', values: valuesFor('gpu', { container: 'custom', custom_image: '  ' }),
    expect: /^Please enter your container image \(a \.sif file under \/project\/containers\/, or a \.sif file under \/scratch\/, or a docker:\/\/ URI\)/ },
  ...['/etc/shadow.sif', '/project/containers/../../etc/x.sif', '/project/containersX/x.sif', '/scratch/x.img', 'oras://ghcr.io/x:1',
    'docker://x;reboot', 'relative/x.sif', ...hostile].map((image): Case => ({
    name: `own image ${JSON.stringify(image).slice(0, 40)} refused`, values: valuesFor('gpu', { container: 'custom', custom_image: image }),
    expect: /^Your own container image must be a \.sif file under \/project\/containers\/, or a \.sif file under \/scratch\/, or a docker:\/\/ URI; ".*" is not\.$/s })),
  // Extra binds.
  { name: 'extra binds, well formed', values: valuesFor('gpu', { extra_binds: '/data/lab, /data/ref:/ref:ro,/x:/y' }), stage: true,
    expect: { queue: 'gpu', hours: 1, native: expectedNative('gpu', 1, 1, 1) } },
  ...[...hostile, 'relative/path', '/a:/b:rx', '/a b'].map((bind): Case => ({
    name: `extra bind ${JSON.stringify(bind).slice(0, 40)} refused`, values: valuesFor('gpu', { extra_binds: `/ok, ${bind}` }),
    expect: /^Each extra bind path must look like \/host\/path, .*; ".*" does not\.$/s })),
  // The account (auto_accounts on this site): a crafted value is refused.
  { name: 'a crafted account', values: valuesFor('gpu', { auto_accounts: 'lab; touch /tmp/x' }),
    expect: /^The account must start with a letter or digit and contain only letters, digits, "_", "\." and "-"; "lab; touch \/tmp\/x" does not\.$/ },
);

// The working directory: text that is a legal path works literally (and is staged); control characters are refused.
for (const text of hostile) {
  const dir = `/tmp/${text}`;
  const legal = !/[\x00-\x1f\x7f]/.test(dir);
  cases.push({ name: `working dir ${JSON.stringify(dir).slice(0, 40)}`, values: valuesFor('gpu', { working_dir: dir }), stage: legal,
    expect: legal ? { queue: 'gpu', hours: 1, native: expectedNative('gpu', 1, 1, 1) }
      : /^The working directory must be an absolute path \(starting with \/\) without line breaks or control characters; ".*" is not\.$/s });
}
cases.push({ name: 'working dir that is relative', values: valuesFor('gpu', { working_dir: 'projects' }),
  expect: /^The working directory must be an absolute path/ });

t.test(`${cases.length} launches rendered by real Ruby ERB as OOD would`, async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  t.comment(`Ruby: ${await rubyDescription()}`);
  const staged = (i: number) => join(app.workDir, 'sessions', String(i));
  await mkdir(join(app.workDir, 'sessions'), { recursive: true });
  const requests: LaunchRequest[] = cases.map((c, i) => ({ values: c.values, ...(c.stage ? { stagedRoot: staged(i) } : {}) }));
  const results = await renderLaunches(app.appDir, requests, { scheduler: { accounts: ['lab'] } });

  cases.forEach((c, i) => {
    const result = results[i]!;
    if (c.expect instanceof RegExp) {
      t.equal(result.ok, false, `${c.name}: refused`);
      t.equal(result.failedAt, 'submit', `${c.name}: refused by submit.yml.erb, before anything is staged or submitted`);
      t.match(result.error ?? '', c.expect, `${c.name}: the researcher's message`);
      return;
    }
    if (!result.ok) {
      t.fail(`${c.name}: accepted`, { error: result.error, failedAt: result.failedAt });
      return;
    }
    // -A lab: auto_accounts preselects the scheduler's first account (the harness's scheduler has one, "lab").
    const args = sbatchArgs(result.submit!, { stagedRoot: result.stagedRoot, jobName: defaultJobName(app.appDir) });
    const hours = String(c.expect.hours).padStart(2, '0');
    t.same(args, ['-D', result.stagedRoot, '-J', defaultJobName(app.appDir), '-o', join(result.stagedRoot, 'output.log'),
      '-p', c.expect.queue, '-A', 'lab', '-t', `${hours}:00:00`, '--export', 'NONE', ...c.expect.native, '--parsable'],
    `${c.name}: sbatch ${args.join(' ')}`);
  });
  t.notOk(existsSync(CANARY), 'no hostile value ran anything while rendering');
});

t.test('staged sessions: every script parses, and settings.sh gives bash the exact values', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const staging = cases.filter((c) => c.stage);
  const requests = staging.map((c, i) => ({ values: c.values, stagedRoot: join(app.workDir, `session ${i} "q" $(x)`) }));
  const results: LaunchResult[] = await renderLaunches(app.appDir, requests, { scheduler: { accounts: ['lab'] } });
  for (const [i, result] of results.entries()) {
    const c = staging[i]!;
    t.equal(result.ok, true, `${c.name}: staged (${result.error ?? ''})`);
    if (!result.ok) continue;
    for (const script of ['settings.sh', 'before.sh', 'script.sh', 'after.sh']) {
      const check = await execa('bash', ['-n', join(result.stagedRoot, script)], { reject: false });
      t.equal(check.exitCode, 0, `${c.name}: bash -n ${script} ${check.stderr}`);
    }
    const read = await execa('bash', ['-c', 'source ./settings.sh && printf "%s\\0" "$container" "$custom_image" "$gpu_count" "$working_dir" "$extra_binds" "$image"'],
      { cwd: result.stagedRoot, reject: false, stripFinalNewline: false });
    const [container, customImage, gpus, workingDir, extraBinds, image] = read.stdout.split('\0');
    t.same({ container, customImage, gpus, workingDir, extraBinds },
      { container: c.values.container, customImage: c.values.custom_image!.trim(), gpus: c.values.num_gpus,
        workingDir: c.values.working_dir, extraBinds: c.values.extra_binds }, `${c.name}: values reach bash exactly`);
    t.equal(image, c.values.container === 'custom' ? c.values.custom_image!.trim() : '/project/containers/pytorch-2.5-cuda12.4-jupyterlab.sif', `${c.name}: image`);
  }
  t.notOk(existsSync(CANARY), 'sourcing settings.sh ran nothing');
});

t.test('a site without own images refuses "custom", and its form has no such choice', async (t) => {
  const app = await builtApp([{ file: 'site.yml', from: 'customImages:\n  allow: true\n  pathPrefixes:\n    - /project/containers\n    - /scratch\n  registries:\n    - docker\n', to: '' }]);
  t.teardown(app.cleanup);
  const [result] = await renderLaunches(app.appDir, [{ values: valuesFor('gpu', { container: 'custom', custom_image: '/scratch/x.sif' }) }], { scheduler: { accounts: ['lab'] } });
  t.equal(result!.ok, false);
  t.match(result!.error, /^Please choose one of the listed containers \("custom" is not one of them\)\.$/);
});

t.test('the session card shows the choices, HTML-escaped, and Connect posts the password to the login page', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const views = await renderViews(app.appDir, {
    userContext: { slurm_partition: 'gpu', container: 'custom', custom_image: '/scratch/<script>alert(1)</script>.sif', num_gpus: '2',
      num_cores: '8', memory_gb: '32', bc_num_hours: '4', working_dir: '/tmp/a *b* | c', extra_binds: '' },
    connection: { host: 'gpu01.cluster', port: 31337, password: 'p4ssw0rd"<' },
    jobId: '123',
  });
  t.equal(views.infoError, null);
  t.equal(views.viewError, null);
  t.match(views.infoMd, /\*\*Partition:\*\* GPU \(A100\)/);
  t.match(views.infoMd, /\*\*GPUs:\*\* 2/);
  t.match(views.infoMd, /\*\*memory:\*\* 32 GB/);
  t.notMatch(views.infoMd, /<script>/, 'no HTML from a form value');
  t.match(views.infoMd, /&lt;script&gt;/);
  t.match(views.viewHtml, /<form action="\/node\/gpu01\.cluster\/31337\/login" method="post" target="_blank">/);
  t.match(views.viewHtml, /name="password" value="p4ssw0rd&quot;&lt;"/);
  t.match(views.viewHtml, /name="next" value="\/node\/gpu01\.cluster\/31337\/lab"/);
});

t.test('the session card gives the batch-script command for the same environment (listed containers only)', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const context = { slurm_partition: 'gpu', container: 'pytorch', num_gpus: '2', num_cores: '8', memory_gb: '32', bc_num_hours: '4', working_dir: "/scratch/a b's", extra_binds: '' };
  const [listed, own] = await Promise.all([
    renderViews(app.appDir, { userContext: context, connection: { host: 'gpu01', port: 1, password: 'x' }, jobId: '1' }),
    renderViews(app.appDir, { userContext: { ...context, container: 'custom', custom_image: '/scratch/mine.sif' }, connection: { host: 'gpu01', port: 1, password: 'x' }, jobId: '2' }),
  ]);
  t.equal(listed.infoError, null);
  // Shellwords.join quotes the directory for bash; the card escapes the backslashes (Markdown) and the quote.
  t.match(listed.infoMd, "- **The same environment as a batch job:** ood-jupyter batch-script --partition gpu --container pytorch --gpus 2 --cores 8 --mem 32 --hours 4 --workdir /scratch/a&#92; b&#92;&#39;s -- python3 your&#95;script.py &gt; job.sh &amp;&amp; sbatch job.sh\n");
  t.notMatch(own.infoMd, /batch-script/, 'not for an own image (batch-script takes container presets)');
});

t.test('the session card shows what the job reported: its GPUs, time left, image, JupyterLab, kernels, package directory, idle limit', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const staged = join(app.workDir, 'staged-card');
  await mkdir(join(staged, 'jupyter'), { recursive: true });
  // As before.sh writes it (write_session_facts), by hand here.
  await (await import('node:fs/promises')).writeFile(join(staged, 'jupyter/card.json'), JSON.stringify({
    gpus: '2,3', image: 'docker://tensorflow/tensorflow:2.17.0-gpu', image_file: '/project/containers/cache/ab12.sif', jupyter_from: 'overlay',
    jupyter_dir: '/project/containers/jupyter-overlays/python3.11', package_dir: '/home/alice/.local/share/ood-jupyter/packages/tensorflow-py3.11',
    kernels: ['Python 3 (TensorFlow 2.17 (GPU))', 'Python 3.11 (conda: <b>x</b>)'], idle_minutes: 30,
  }));
  const views = await renderViews(app.appDir, {
    stagedRoot: staged, jobId: '9', info: { wallclockTime: 1800, wallclockLimit: 7200 }, connection: { host: 'gpu01', port: 1, password: 'x' },
    userContext: { slurm_partition: 'gpu', container: 'tensorflow', num_gpus: '2', num_cores: '8', memory_gb: '32', bc_num_hours: '2', working_dir: '', extra_binds: '' },
  });
  t.equal(views.infoError, null);
  const lines = (views.infoMd ?? '').split('\n');
  t.ok(lines.includes('- **GPUs:** 2 (on its node: GPU 2,3)'), views.infoMd ?? '');
  t.ok(lines.includes('- **Time left:** 1 h 30 min'));
  t.ok(lines.includes('- **Image:** docker://tensorflow/tensorflow:2.17.0-gpu, run from /project/containers/cache/ab12.sif'));
  t.ok(lines.includes('- **JupyterLab:** the site&#39;s JupyterLab for this image&#39;s Python (/project/containers/jupyter-overlays/python3.11)'));
  t.ok(lines.includes('- **Kernels:** Python 3 (TensorFlow 2.17 (GPU)); Python 3.11 (conda: &lt;b&gt;x&lt;/b&gt;)'), 'names HTML-escaped');
  t.ok(lines.includes('- **`pip install` goes to:** /home/alice/.local/share/ood-jupyter/packages/tensorflow-py3.11'));
  t.ok(lines.includes('- This session ends by itself after 30 minute(s) without activity (no running kernel, no open JupyterLab tab), so its GPUs go back.'));
});

// ---------------------------------------------------------------------------
// The completed view and output.log. The job's output.log can be made huge (JupyterLab logs every request anyone
// who reaches the node's port makes), and the dashboard renders the view on every page load: it reads only the end.
// ---------------------------------------------------------------------------

const failedDetail = 'ood-jupyter: ERROR: the image docker://python:3.12 has no python3 that runs, which JupyterLab needs. Choose another container.';

/** A session directory whose job failed, with this output.log (written by `write`). */
async function failedSession(dir: string, write: (log: string) => Promise<void>): Promise<string> {
  await mkdir(join(dir, 'jupyter'), { recursive: true });
  await writeFile(join(dir, 'jupyter/ended'), `failed\n${failedDetail}\n`);
  await write(join(dir, 'output.log'));
  return dir;
}

/** The lines the completed view shows from output.log (its <pre>, HTML entities left as they are). */
function shownLogLines(html: string | null): string[] {
  const pre = /<pre[^>]*>([\s\S]*?)<\/pre>/.exec(html ?? '');
  return pre ? pre[1]!.split('\n') : [];
}

t.test('the completed view reads only the end of output.log: a 50 MB log shows its last lines, as fast as a small one', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const early = 'ood-jupyter: ERROR: a line from the start of the log';
  const ordinary = 'epoch 17/100 - loss: 0.4211 - accuracy: 0.8812 - val_loss: 0.4519 - val_accuracy: 0.8700\n';
  const last = `ood-jupyter: pulled docker://python:3.12 in 42 s.\nsome output of the image\n${failedDetail}\nood-jupyter: ERROR: JupyterLab exited with status 1.\n`;
  const small = await failedSession(join(app.workDir, 'small'), (log) => writeFile(log, `${early}\n${ordinary.repeat(100)}${last}`));
  const big = await failedSession(join(app.workDir, 'big'), async (log) => {
    const file = await open(log, 'w');
    const chunk = ordinary.repeat(Math.ceil((1 << 20) / ordinary.length));
    await file.write(`${early}\n`);
    for (let written = 0; written < 50_000_000; written += chunk.length) await file.write(chunk);
    await file.write(last);
    await file.close();
  });
  // Each batch renders the view several times in one Ruby process, so that the renders weigh against Ruby's start.
  const renders = 10;
  const timed = async (stagedRoot: string) => {
    const started = performance.now();
    const results = (await runDashboard(Array.from({ length: renders }, () =>
      ({ kind: 'views' as const, appDir: app.appDir, stagedRoot, jobId: '7', status: 'completed', connection: {} })))) as ViewsResult[];
    return { ms: performance.now() - started, result: results[0]! };
  };
  await timed(small); // Ruby's first start warms caches; not measured.
  const smallRun = await timed(small);
  const bigRun = await timed(big);
  t.comment(`${renders} renders of the completed view in one Ruby process (${await rubyDescription()}): ` +
    `small output.log ${smallRun.ms.toFixed(0)} ms, 50 MB output.log ${bigRun.ms.toFixed(0)} ms`);
  for (const [name, run] of [['small', smallRun], ['50 MB', bigRun]] as const) {
    t.equal(run.result.completedError, null, `${name}: renders`);
    t.match(run.result.completedMd, failedDetail.replace(/'/g, '&#39;'), `${name}: the detail line`);
    t.same(shownLogLines(run.result.completedMd).slice(-2), ['ood-jupyter: pulled docker://python:3.12 in 42 s.', 'ood-jupyter: ERROR: JupyterLab exited with status 1.'],
      `${name}: the job's last lines`);
  }
  t.ok(shownLogLines(smallRun.result.completedMd).includes(early), 'a small log is read whole');
  t.notOk(shownLogLines(bigRun.result.completedMd).includes(early), 'a 50 MB log: its start is not read');
  t.ok(bigRun.ms < 3 * smallRun.ms + 150, `the 50 MB log renders about as fast as the small one (${bigRun.ms.toFixed(0)} ms < 3 × ${smallRun.ms.toFixed(0)} ms + 150 ms)`);
});

t.test('the completed view never shows JupyterLab\'s request-log lines (anyone who reaches the port chooses their URL)', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const requestLines = [
    '[W 2026-12-06 12:00:00.123 ServerApp] 404 GET /node/gpu01/31337/ood-jupyter:%20ERROR:%20fake/ERROR (@127.0.0.1) 1.23ms referer=None',
    '[W 2026-12-06 12:00:01.456 ServerApp] 404 GET /node/gpu01/31337/ood-jupyter: ERROR: fake, log in at evil.example (@10.0.0.9) 0.80ms referer=None',
    '[E 2026-12-06 12:00:02.789 ServerApp] 500 POST /ERROR/Traceback?x=ood-jupyter:%20ERROR (@10.0.0.9) 3.10ms referer=None',
    '[W 2026-12-06 12:00:03.000 LabApp] 405 ERROR /Error (@10.0.0.9) 0.50ms referer=None',
    // Not request-log lines, but they quote a request too: a header, an uncaught exception's address.
    '[W 2026-12-06 12:00:04.000 ServerApp] Blocking Cross Origin API request for /node/gpu01/31337/api/kernels.  Origin: ood-jupyter: ERROR: fake, Host: gpu01:31337',
    '[E 2026-12-06 12:00:05.000 ServerApp] Uncaught exception GET /node/gpu01/31337/ERROR-fake (10.0.0.9)',
  ];
  const real = 'ood-jupyter: ERROR: JupyterLab exited with status 1.';
  const jupyterError = '[E 2026-12-06 12:00:06.000 ServerApp] Error loading server extension jupyterlab_example';
  const session = await failedSession(join(app.workDir, 'staged'), (log) => writeFile(log,
    ['[I 2026-12-06 11:59:59.000 ServerApp] Jupyter Server 2.14.2 is running at:', ...requestLines, jupyterError, real, ''].join('\n')));
  const views = await renderViews(app.appDir, { stagedRoot: session, jobId: '7', status: 'completed', connection: {} });
  t.equal(views.completedError, null);
  const shown = shownLogLines(views.completedMd);
  t.same(shown, [jupyterError, real], 'only the job\'s own line and JupyterLab\'s own error');
  t.notMatch(views.completedMd, /fake|evil|GET|POST/, 'nothing of the requests');
});

t.test('the completed view: a line cut by where the read starts is dropped, and bytes that are not UTF-8 do not break it', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const session = await failedSession(join(app.workDir, 'staged'), (log) => writeFile(log, Buffer.concat([
    Buffer.from(`ood-jupyter: a line longer than the part read ${'x'.repeat(70_000)} and an Error at its end\n`),
    Buffer.from('ood-jupyter: ERROR: caf'), Buffer.from([0xe9, 0x20, 0xff]), Buffer.from(' (not UTF-8)\n'),
  ])));
  const views = await renderViews(app.appDir, { stagedRoot: session, jobId: '7', status: 'completed', connection: {} });
  t.equal(views.completedError, null);
  t.same(shownLogLines(views.completedMd), ['ood-jupyter: ERROR: caf\uFFFD \uFFFD (not UTF-8)']);
});
