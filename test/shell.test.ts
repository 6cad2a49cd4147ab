// The rendered job scripts as bash sees them: `bash -n` and shellcheck for several site set-ups, then a
// whole job run under a wrapper that behaves like OOD's basic template (test/support/basic-template.sh),
// with the container runtime replaced by a RECORDING STUB (test/support/recording-runtime.sh). The stub
// only records its argv; the real runtime runs in the end-to-end suite (test/e2e/) on a Slurm node.
import t from 'tap';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { renderLaunches } from './support/ood.js';
import { jobScript } from './support/basic-template.js';
import { RECORDING_RUNTIME, readRecordedRuns } from './support/ood.js';
import { builtApp, type BuiltApp } from './support/app.js';
import type { Edit } from './support/presets.js';
import { SAFE_MAIN } from './support/job-library.js';
import { planFromPresets } from '../src/build.js';
import { renderApp } from '../src/render/render.js';
import { batchScript, doctorProgram, pullProgram } from '../src/render/job-scripts.js';
import { bundledPresets } from './support/presets.js';

const scripts = ['settings.sh', 'before.sh', 'script.sh', 'after.sh'];

/** Site variants whose scripts differ: runtime, set-up lines, binds, own images, GPUs. */
const variants: Array<{ name: string; edits: Edit[]; values: Record<string, string> }> = [
  { name: 'bundled example, gpu partition', edits: [], values: { slurm_partition: 'gpu', num_gpus: '2' } },
  { name: 'bundled example, cpu partition', edits: [], values: { slurm_partition: 'cpu', num_gpus: '0', container: 'datascience' } },
  { name: 'singularity, several set-up lines, no binds, no own images, text account',
    edits: [
      { file: 'site.yml', from: 'command: apptainer', to: 'command: singularity' },
      { file: 'site.yml', from: '    - module load apptainer', to: '    - module purge\n    - module load singularity/3.8' },
      { file: 'site.yml', from: 'binds:\n  - /scratch\n  - /project\n', to: 'binds: []\n' },
      { file: 'site.yml', from: 'customImages:\n  allow: true\n  pathPrefixes:\n    - /project/containers\n    - /scratch\n  registries:\n    - docker\n', to: '' },
      { file: 'site.yml', from: 'accounts: auto', to: 'accounts: text' },
    ],
    values: { slurm_partition: 'gpu', num_gpus: '1', bc_account: 'lab' } },
  { name: 'a site without GPUs', edits: [
      { file: 'site.yml', from: '  - gpu\n  - gpu-large\n', to: '' },
      { file: 'partitions/gpu.yml', from: null, to: null }, { file: 'partitions/gpu-large.yml', from: null, to: null },
    ], values: { slurm_partition: 'cpu', container: 'datascience' } },
];

const inCI = process.env.CI === 'true';

async function hasShellcheck(): Promise<boolean> {
  return (await execa('shellcheck', ['--version'], { reject: false })).exitCode === 0;
}

t.test('rendered job scripts pass bash -n and shellcheck', async (t) => {
  const shellcheck = await hasShellcheck();
  if (!shellcheck) {
    if (inCI) t.fail('shellcheck is not installed: CI must run it (.ci/run installs the Debian package)');
    else console.error('\n*** shellcheck is NOT installed: the rendered scripts are checked with bash -n only. apt-get install shellcheck ***\n');
  }
  for (const variant of variants) {
    const app = await builtApp(variant.edits);
    t.teardown(app.cleanup);
    const staged = join(app.workDir, 'session');
    const [result] = await renderLaunches(app.appDir, [{ values: variant.values, stagedRoot: staged }], { scheduler: { accounts: ['lab'] } });
    t.equal(result!.ok, true, `${variant.name}: staged ${result!.error ?? ''}`);
    for (const script of scripts) {
      const syntax = await execa('bash', ['-n', join(staged, script)], { reject: false });
      t.equal(syntax.exitCode, 0, `${variant.name}: bash -n ${script} ${syntax.stderr}`);
      if (!shellcheck) continue;
      const lint = await execa('shellcheck', ['--shell=bash', '--external-sources', '--source-path=SCRIPTDIR', script], { cwd: staged, reject: false });
      t.equal(lint.exitCode, 0, `${variant.name}: shellcheck ${script}\n${lint.stdout}`);
    }
  }
});

t.test('the staff programs (doctor, pull, batch-script) pass bash -n and shellcheck\'s error checks, with a site cache and overlays', async (t) => {
  const shellcheck = await hasShellcheck();
  const plan = await planFromPresets(bundledPresets);
  t.ok(plan.site.images.cacheDir && plan.site.python.overlays, 'the bundled site has a cache and overlays');
  const files = await renderApp(plan);
  const programs = {
    doctor: doctorProgram(plan, files),
    pull: pullProgram(plan, files).script,
    'batch-script': batchScript(plan, files, { partition: 'gpu', container: plan.containers[0]!.name, gpus: 1, cores: 1, memoryGb: 4, hours: 1, command: ['python3', 'train.py'] }),
  };
  for (const [name, program] of Object.entries(programs)) {
    const syntax = await execa('bash', ['-n'], { input: program, reject: false });
    t.equal(syntax.exitCode, 0, `${name}: bash -n ${syntax.stderr}`);
    if (!shellcheck) continue;
    // Errors only: a staff program is the library pasted after the site's settings, so shellcheck's
    // warnings about names the program does not use say nothing; the session scripts get every check above.
    const lint = await execa('shellcheck', ['--shell=bash', '--severity=error', '-'], { input: program, reject: false });
    t.equal(lint.exitCode, 0, `${name}: shellcheck\n${lint.stdout}`);
  }
});

interface JobRun {
  exitCode: number;
  output: string;
  stagedRoot: string;
  runs: string[][];
}

/**
 * One job as OOD would run it: the session staged by real Ruby, the basic-template wrapper around it, bash,
 * and the recording stub as `apptainer` on PATH (unless `withRuntime` is false).
 */
async function runJob(app: BuiltApp, values: Record<string, string>, opts: { withRuntime?: boolean; home: string; env?: Record<string, string> } ): Promise<JobRun> {
  // Like OOD's own staged roots (a UUID under ~/ondemand/data): its job script cd's there unquoted.
  const stagedRoot = join(opts.home, 'ondemand', `session-${Math.random().toString(36).slice(2)}`);
  const [launch] = await renderLaunches(app.appDir, [{ values, stagedRoot }], { scheduler: { accounts: ['lab'] } });
  if (!launch!.ok) throw new Error(`launch refused: ${launch!.error}`);
  const bin = join(app.workDir, opts.withRuntime === false ? 'bin-empty' : 'bin');
  await mkdir(bin, { recursive: true });
  if (opts.withRuntime !== false && !existsSync(join(bin, 'apptainer'))) await symlink(RECORDING_RUNTIME, join(bin, 'apptainer'));
  // A STUB nvidia-smi: this machine has no GPU, and a GPU job checks that its node has a driver.
  if (!existsSync(join(bin, 'nvidia-smi'))) await writeFile(join(bin, 'nvidia-smi'), '#!/bin/sh\necho "GPU 0: stub"\n', { mode: 0o755 });
  await writeFile(join(stagedRoot, 'job.sh'), jobScript(stagedRoot));
  await chmod(join(stagedRoot, 'job.sh'), 0o755);
  const log = join(stagedRoot, 'runtime-calls.jsonl');
  await writeFile(log, '');
  const job = await execa('bash', [join(stagedRoot, 'job.sh')], {
    cwd: opts.home, reject: false, all: true, timeout: 60_000,
    env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, HOME: opts.home, USER: 'researcher', RECORDING_RUNTIME_LOG: log, RECORDING_RUNTIME_LISTEN_SECONDS: '2', ...opts.env },
    extendEnv: false,
  });
  // argv[0] is the stub's path on PATH; the tests compare the name the script called.
  const runs = (await readRecordedRuns(log)).map((r) => [basename(r.argv[0]!), ...r.argv.slice(1)]);
  return { exitCode: job.exitCode ?? -1, output: job.all ?? '', stagedRoot, runs };
}

t.test('a whole job under the OOD wrapper, runtime replaced by the recording stub', async (t) => {
  const root = (await import('node:os')).tmpdir();
  const scratchParent = await (await import('node:fs/promises')).mkdtemp(join(root, 'ood-jupyter-job-'));
  const images = join(scratchParent, 'images');
  const scratch = join(scratchParent, 'scratch');
  await mkdir(images, { recursive: true });
  await mkdir(scratch, { recursive: true });
  // Stand-ins: only their first bytes are a SIF's (the job checks them; the recording stub runs nothing).
  for (const name of ['pytorch.sif', 'datascience.sif']) await writeFile(join(images, name), '#!/usr/bin/env run-singularity\n\0SIF_MAGIC\0 (a stand-in, not really a SIF)\n');
  const app = await builtApp([
    { file: 'containers/pytorch.yml', from: '/project/containers/pytorch-2.5-cuda12.4-jupyterlab.sif', to: join(images, 'pytorch.sif') },
    { file: 'containers/datascience.yml', from: '/project/containers/datascience-2025.10.sif', to: join(images, 'datascience.sif') },
    { file: 'site.yml', from: '  - /scratch\n  - /project\n', to: `  - ${scratch}\n  - /nonexistent/project\n` },
    { file: 'site.yml', from: '    - module load apptainer', to: '    - export SITE_SETUP_RAN=yes' },
    // No per-user installs here: an image without JupyterLab ends the job (the e2e suite covers the install).
    { file: 'site.yml', from: '  userInstall: true\n', to: '  userInstall: false\n' },
  ]);
  t.teardown(async () => { await app.cleanup(); await (await import('node:fs/promises')).rm(scratchParent, { recursive: true, force: true }); });
  const home = join(app.workDir, 'home');
  const canary = join(app.workDir, 'CANARY');
  const workDir = join(home, `a b "c" $(touch ${canary}) \`touch ${canary}\``);
  const outside = join(scratchParent, `elsewhere 'q' $(touch ${canary})`);
  await mkdir(workDir, { recursive: true });
  await mkdir(outside, { recursive: true });
  const config = (r: JobRun) => join(r.stagedRoot, 'jupyter/config/jupyter_server_config.py');

  await t.test('gpu partition, 2 GPUs, a hostile working directory in home, extra binds', async (t) => {
    const run = await runJob(app, { slurm_partition: 'gpu', num_gpus: '2', container: 'pytorch', working_dir: workDir, extra_binds: `${scratch}:/data:ro, /tmp` }, { home });
    t.equal(run.exitCode, 0, run.output);
    const runtimeArgs = ['apptainer', 'exec', '--nv', '--bind', scratch, '--bind', `${scratch}:/data:ro`, '--bind', '/tmp', join(images, 'pytorch.sif')];
    t.equal(run.runs.length, 2, 'the image is probed, then JupyterLab runs');
    t.same([...run.runs[0]!.slice(0, -2), run.runs[0]!.at(-1)], [...runtimeArgs, 'python3', '-c', 'probe'], 'the probe runs in the same container set-up');
    t.same(run.runs[1], [...runtimeArgs, 'python3', '-s', '-c', SAFE_MAIN, 'jupyterlab', `--config=${config(run)}`],
      'exact runtime argv: --nv, site bind that exists, extra binds, no bind for the working dir inside home, no ~/.local');
    t.notOk(existsSync(canary), 'the hostile directory name ran nothing');
    t.match(run.output, `ood-jupyter: starting JupyterLab from ${join(images, 'pytorch.sif')} on `);
    t.match(run.output, `in ${workDir}`, 'JupyterLab started in the chosen working directory');
    t.match(run.output, /ood-jupyter: JupyterLab is listening on /);

    const connection = await readFile(join(run.stagedRoot, 'connection.yml'), 'utf8');
    const password = /password: (\S+)/.exec(connection)?.[1]?.replace(/^['"]|['"]$/g, '') ?? '';
    t.equal(password.length, 32, 'a 32-character password');
    const settings = await readFile(config(run), 'utf8');
    t.equal((await stat(config(run))).mode & 0o777, 0o600, 'Jupyter config is private (0600)');
    t.equal((await stat(run.stagedRoot)).mode & 0o777, 0o700, 'the session directory is private');
    t.equal((await stat(join(run.stagedRoot, 'jupyter/runtime'))).mode & 0o777, 0o700, 'Jupyter runtime dir is private');
    t.notMatch(settings, password, 'the password itself is not in the config');
    const hashed = /hashed_password = "sha256:([^:]+):([0-9a-f]{64})"/.exec(settings);
    t.ok(hashed, 'the password is stored as a salted sha256 hash');
    if (hashed) t.equal(createHash('sha256').update(password + hashed[1]).digest('hex'), hashed[2], 'and the hash is of this password');
    t.match(settings, /c\.IdentityProvider\.token = ""/, 'no token is printed to output.log');
    const port = /port: (\d+)/.exec(connection)?.[1];
    t.match(settings, new RegExp(`^port = int\\(os\\.environ\\.get\\("OOD_JUPYTER_PORT"\\) or ${port}\\)$`, 'm'), 'the port of connection.yml, unless script.sh moves it');
    t.match(settings, /^c\.ServerApp\.base_url = "\/node\/[^/"]+\/%d\/" % port$/m, 'the base URL follows the port');
    t.match(settings, /c\.ServerApp\.port_retries = 0/);
    t.notMatch(settings, /disable_check_xsrf|allow_origin =/, 'XSRF protection is not turned off, and no origin is allowed wholesale');
    t.match(settings, /^c\.ServerApp\.allow_origin_pat = r"\^\(%s\)\\Z" % .*\["https:\/\/ondemand\.example\.edu"\]\)$/m, 'exactly the portal origins of site.yml are allowed (\\Z: $ would also match before a final newline)');
    t.match(settings, /^c\.ServerApp\.ip = "vm"$|^c\.ServerApp\.ip = "[^"0*][^"]*"$/m, 'JupyterLab listens on the host address only, not 0.0.0.0');
    t.notMatch(settings, /0\.0\.0\.0/);
    t.match(settings, /^c\.LabApp\.news_url = None$/m, 'no Jupyter news fetched from the compute node');
    t.match(settings, /^c\.LabApp\.check_for_updates_class = "jupyterlab\.NeverCheckForUpdate"$/m);
    t.same(JSON.parse(await readFile(join(run.stagedRoot, 'jupyter/config/labconfig/page_config.json'), 'utf8')),
      { disabledExtensions: { '@jupyterlab/apputils-extension:announcements': true } }, 'nor asked about');
    t.notOk(run.runs.flat().some((arg) => arg.includes(password)), 'the password is on no command line');
    t.notMatch(run.output, password, 'nor in output.log');
    const kernel = JSON.parse(await readFile(join(run.stagedRoot, 'jupyter/data/kernels/python3/kernel.json'), 'utf8'));
    t.same(kernel.argv, ['/usr/bin/python3', '-c', SAFE_MAIN, 'ipykernel_launcher', '-f', '{connection_file}'], 'the kernel is the image\'s Python, as probed, started without the notebook\'s directory on sys.path');
    t.equal(kernel.display_name, 'Python 3 (PyTorch 2.5 (CUDA 12.4))');
    t.same(kernel.env, { PYTHONPATH: join(home, '.local/share/ood-jupyter/packages/pytorch-py3.12/lib/python3.12/site-packages') }, 'with the package directory of this image on PYTHONPATH');

    const again = await runJob(app, { slurm_partition: 'gpu', num_gpus: '2', container: 'pytorch', working_dir: workDir }, { home });
    t.equal(again.exitCode, 0, again.output);
    t.equal(again.runs.length, 1, 'a second session of the same image probes nothing: only JupyterLab runs');
  });

  await t.test('cpu partition: no --nv; a working directory outside home is bound', async (t) => {
    const run = await runJob(app, { slurm_partition: 'cpu', num_gpus: '0', container: 'datascience', working_dir: outside }, { home });
    t.equal(run.exitCode, 0, run.output);
    t.same(run.runs[1], [
      'apptainer', 'exec', '--bind', scratch, '--bind', outside,
      join(images, 'datascience.sif'), 'python3', '-s', '-c', SAFE_MAIN, 'jupyterlab', `--config=${config(run)}`,
    ]);
    t.notOk(existsSync(canary));
  });

  await t.test('a docker:// image on a node that cannot reach its registry: one line, and nothing run', async (t) => {
    // A STUB curl that fails as curl does when the registry's name does not resolve (exit 6), so the
    // case holds on a machine with network too. The real registry is in test/e2e/images.test.ts.
    const offline = join(app.workDir, 'offline-bin');
    await mkdir(offline, { recursive: true });
    await writeFile(join(offline, 'curl'), '#!/bin/sh\necho "curl: (6) Could not resolve host (stub: no network)" >&2\nexit 6\n');
    await chmod(join(offline, 'curl'), 0o755);
    const run = await runJob(app, { slurm_partition: 'gpu', num_gpus: '1', container: 'tensorflow' }, { home, env: { PATH: `${offline}:${join(app.workDir, 'bin')}:/usr/local/bin:/usr/bin:/bin` } });
    t.not(run.exitCode, 0);
    t.match(run.output, /^ood-jupyter: ERROR: cannot reach the registry registry-1\.docker\.io from \S+ to fetch docker:\/\/tensorflow\/tensorflow:2\.17\.0-gpu \(compute nodes may have no network\)\./m);
    t.equal(run.output.match(/ERROR/g)?.length, 1, `one line:\n${run.output}`);
    t.same(run.runs, [], 'the runtime never ran: no pull was tried');
  });

  await t.test('an image the job cannot use ends it in seconds, with one line (probe answers from the stub)', async (t) => {
    const cases = [
      { probe: 'python=3.11.2\njupyter_server=1.23.3\njupyterlab=\nipykernel=6.17.0', line: /^ood-jupyter: ERROR: the image \S+pytorch\.sif lacks Jupyter Server 2 \(it has 1\.23\.3\) and JupyterLab for its Python 3\.11, and this site has no JupyterLab/m },
      { probe: 'python=3.13.1\njupyter_server=\njupyterlab=\nipykernel=', line: /^ood-jupyter: ERROR: the image \S+pytorch\.sif lacks JupyterLab and ipykernel for its Python 3\.13/m },
      { probe: '', line: /^ood-jupyter: ERROR: the image \S+pytorch\.sif has no python3 that runs/m },
    ];
    for (const c of cases) {
      // The stub answers differently for the same image file: forget what earlier cases probed.
      await (await import('node:fs/promises')).rm(join(home, '.cache/ood-jupyter'), { recursive: true, force: true });
      const run = await runJob(app, { slurm_partition: 'gpu', num_gpus: '1', container: 'pytorch' }, { home, env: { RECORDING_RUNTIME_PROBE: c.probe } });
      t.not(run.exitCode, 0);
      t.match(run.output, c.line);
      t.equal(run.output.match(/ERROR/g)?.length, 1, `one line only, not a second one from after.sh:\n${run.output}`);
      t.equal(run.runs.length, 1, 'JupyterLab was never started');
    }
  });

  await t.test('faults end the job with one plain line', async (t) => {
    const missing = await runJob(app, { slurm_partition: 'gpu', container: 'custom', custom_image: '/scratch/not-there.sif' }, { home });
    t.not(missing.exitCode, 0);
    t.match(missing.output, /^ood-jupyter: ERROR: the container image \/scratch\/not-there\.sif does not exist or cannot be read on .+\. Choose another container/m);
    t.same(missing.runs, [], 'the runtime never ran');

    const noRuntime = await runJob(app, { slurm_partition: 'gpu', container: 'pytorch' }, { home, withRuntime: false });
    t.not(noRuntime.exitCode, 0);
    t.match(noRuntime.output, /^ood-jupyter: ERROR: the container runtime "apptainer" is not available on .+ after the site set-up commands\./m);

    const gone = await runJob(app, { slurm_partition: 'gpu', container: 'pytorch', working_dir: join(home, 'deleted since') }, { home });
    t.not(gone.exitCode, 0);
    t.match(gone.output, /^ood-jupyter: ERROR: cannot enter the working directory .*deleted since/m);
  });
});
