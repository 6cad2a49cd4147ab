// The `ood-jupyter` command as staff use it: the built CLI in a real process.
import t from 'tap';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, lineContaining, presetCopy, repoRoot } from './support/presets.js';

const run = (args: string[], cwd = repoRoot) => execa('node', [cliPath, ...args], { cwd, reject: false });

t.test('build with no options writes the app from the bundled presets to build/jupyter-apptainer', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'ood-jupyter-cli-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  const result = await run(['build'], cwd);
  t.equal(result.exitCode, 0, result.stderr);
  const app = join(cwd, 'build/jupyter-apptainer');
  const files = ['form.yml', 'manifest.yml', 'submit.yml.erb', 'view.html.erb', 'info.md.erb',
    'template/before.sh.erb', 'template/script.sh.erb', 'template/after.sh.erb'];
  for (const file of files) t.ok((await stat(join(app, file))).isFile(), `${file} written`);
  t.equal((await stat(join(app, 'template/script.sh.erb'))).mode & 0o777, 0o755, 'script.sh.erb is executable (OOD runs it directly)');
  t.equal((await stat(join(app, 'template/before.sh.erb'))).mode & 0o777, 0o644, 'sourced scripts are not');
  t.match(result.stdout, /Wrote \d+ files to build\/jupyter-apptainer\//);
});

t.test('validate reports a broken field as FILE:LINE field: message and exits 1', async (t) => {
  const { dir, cleanup } = await presetCopy([{ file: 'partitions/gpu.yml', from: '  max: 4\n', to: '  max: four\n' }]);
  t.teardown(cleanup);
  const result = await run(['validate', '--presets', dir]);
  const line = await lineContaining(dir, 'partitions/gpu.yml', 'max: four');
  t.equal(result.exitCode, 1);
  t.match(result.stderr, `${join(dir, 'partitions/gpu.yml')}:${line} gpus.max: must be a whole number ≥ 0`);
  t.match(result.stderr, /1 problem in the presets\./);
});

t.test('validate on the bundled presets says OK and exits 0', async (t) => {
  const result = await run(['validate']);
  t.equal(result.exitCode, 0, result.stderr);
  t.match(result.stdout, /OK — 3 partitions \(gpu, gpu-large, cpu\), 3 containers/);
});

t.test('build with a broken preset writes nothing and leaves the previous app untouched', async (t) => {
  const { dir, cleanup } = await presetCopy([{ file: 'containers/pytorch.yml', from: 'jupyterlab: true', to: 'jupyterlab: maybe' }]);
  t.teardown(cleanup);
  const out = join(dir, '..', 'out', 'app');

  const fresh = await run(['build', '--presets', dir, '--out', out]);
  t.equal(fresh.exitCode, 1);
  t.match(fresh.stderr, /containers\/pytorch\.yml:\d+ jupyterlab: .*\n.*nothing was written/);
  await t.rejects(stat(out), { code: 'ENOENT' }, 'no app directory created');
  await t.rejects(stat(join(dir, '..', 'out')), { code: 'ENOENT' }, 'not even its parent: validation runs before any write');

  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'form.yml'), 'previous app\n');
  const again = await run(['build', '--presets', dir, '--out', out]);
  t.equal(again.exitCode, 1);
  t.equal(await readFile(join(out, 'form.yml'), 'utf8'), 'previous app\n', 'previous app kept as it was');
  t.same(await readdir(join(out, '..')), ['app'], 'no temporary directory left beside it');
});

t.test('a rebuild replaces the app as a whole', async (t) => {
  const { dir, cleanup } = await presetCopy();
  t.teardown(cleanup);
  const out = join(dir, '..', 'app');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'stale-file'), 'from an older build\n');
  const result = await run(['build', '--presets', dir, '--out', out]);
  t.equal(result.exitCode, 0, result.stderr);
  await t.rejects(stat(join(out, 'stale-file')), { code: 'ENOENT' });
  t.ok((await stat(join(out, 'form.yml'))).isFile());
});

t.test('--help for the tool and for each command', async (t) => {
  const main = await run(['--help']);
  t.equal(main.exitCode, 0);
  t.match(main.stdout, /Commands:\n\s+init\s+.*\n\s+build\s+.*\n\s+validate\s+/);
  for (const command of ['build', 'validate']) {
    const help = await run([command, '--help']);
    t.equal(help.exitCode, 0);
    t.match(help.stdout, `Usage: ood-jupyter ${command}`);
    t.match(help.stdout, '--presets DIR');
  }
});

t.test('misuse exits non-zero with one clear line', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['biuld'], /^ood-jupyter: unknown command "biuld" \(commands: init, build, validate, preview, batch-script, docs, doctor, diff, deploy, rollback, schema, pull; see ood-jupyter --help\)$/],
    [['build', '--ouput', 'x'], /^ood-jupyter build: Unknown option '--ouput'.*\(usage: ood-jupyter build \[--presets DIR\] \[--out DIR\] \[--check\]\)$/],
    [['validate', 'extra'], /^ood-jupyter validate: .*positional.*\(usage: /],
    [['validate', '--presets', '/nonexistent/presets'], /site\.yml:1 cannot be read \(ENOENT\)/],
  ];
  for (const [args, message] of cases) {
    const result = await run(args);
    t.not(result.exitCode, 0, args.join(' '));
    t.match(result.stderr.trim().split('\n')[0], message, args.join(' '));
  }
  const bare = await run([]);
  t.equal(bare.exitCode, 2, 'no command: usage, exit 2');
});

t.test('batch-script prints a job script for the partition\'s limits, checked like the form', async (t) => {
  const result = await run(['batch-script', '--partition', 'gpu', '--container', 'pytorch', '--gpus', '2', '--mem', '64', '--hours', '4', '--cores', '8',
    '--workdir', '/scratch/alice/run 1', '--', 'python', 'train.py', '--lr', "0.1 'x'\n$(touch /tmp/CANARY)"]);
  t.equal(result.exitCode, 0, result.stderr);
  const script = result.stdout;
  const sbatch = script.split('\n').filter((l) => l.startsWith('#SBATCH'));
  t.same(sbatch, [
    '#SBATCH --partition=gpu', '#SBATCH --time=4:00:00', '#SBATCH --nodes=1', '#SBATCH --ntasks=1', '#SBATCH --cpus-per-task=8',
    '#SBATCH --mem=64G', '#SBATCH --gres=gpu:a100:2', '#SBATCH --qos=interactive', '#SBATCH --job-name=pytorch-batch',
  ], 'the same sbatch options a session with these values gets (reviewed)');
  t.match(script, /^image=\/project\/containers\/pytorch-2\.5-cuda12\.4-jupyterlab\.sif$/m);
  t.match(script, /^gpu_count=2$/m);
  t.match(script, /^working_dir='\/scratch\/alice\/run 1'$/m);
  t.match(script, /^run_batch_command python train.py --lr '0\.1 '\\''x'\\''\n\$\(touch \/tmp\/CANARY\)'$/m, 'the command, each word quoted once');
  t.equal(script.split('\n').filter((l) => l.startsWith('#') && l.includes('CANARY')).length, 1, 'a newline in the command cannot end the header comment');
  const parsed = await execa('bash', ['-n'], { input: script, reject: false });
  t.equal(parsed.exitCode, 0, `bash -n: ${parsed.stderr}`);
  const lint = await execa('shellcheck', ['-S', 'error', '-'], { input: script, reject: false });
  t.equal(lint.exitCode, 0, `shellcheck -S error: ${lint.stdout}`);
});

t.test('batch-script refuses what the form would refuse, in the form\'s words, and exits 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--partition', 'gpu', '--container', 'pytorch', '--gpus', '9'], /^ood-jupyter batch-script: GPUs on the GPU \(A100\) partition must be between 1 and 4; you asked for 9\.$/m],
    [['--partition', 'cpu', '--container', 'datascience', '--gpus', '1'], /The CPU only partition has no GPUs/],
    [['--partition', 'nope', '--container', 'pytorch'], /Please choose one of the listed partitions \("nope" is not one of them\)/],
    [['--partition', 'gpu', '--container', 'pytorch', '--mem', 'lots'], /--mem must be a whole number; you gave "lots"/],
    [['--partition', 'gpu', '--container', 'pytorch'], /give the command to run after "--"/],
  ];
  for (const [args, message] of cases) {
    const result = await run(['batch-script', ...args, ...(args.includes('pytorch') && !args.includes('--mem') && args.length === 4 ? [] : ['--', 'true'])]);
    t.equal(result.exitCode, 2, args.join(' '));
    t.match(result.stderr, message);
    t.equal(result.stdout, '', 'nothing printed to stdout');
  }
});

t.test('pull with presets that name no registry image says so', async (t) => {
  const { dir, cleanup } = await presetCopy([{ file: 'containers/tensorflow.yml', from: 'docker://tensorflow/tensorflow:2.17.0-gpu', to: '/project/containers/tf.sif' }]);
  t.teardown(cleanup);
  const result = await run(['pull', '--presets', dir]);
  t.equal(result.exitCode, 0, result.stderr);
  t.match(result.stdout, /no container preset names a docker:\/\/ or oras:\/\/ image; nothing to pull/);
});

t.test('--help lists batch-script and pull', async (t) => {
  const result = await run(['--help']);
  t.match(result.stdout, /batch-script +print an sbatch script/);
  t.match(result.stdout, /pull +pull the presets' docker:\/\/ and oras:\/\/ images/);
});

t.test('docs writes the researchers\' page as Markdown and HTML; the committed page for the bundled presets is current', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'ood-jupyter-docs-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  const result = await run(['docs', '--out', join(cwd, 'guide.md')]);
  t.equal(result.exitCode, 0, result.stderr);
  const md = await readFile(join(cwd, 'guide.md'), 'utf8');
  const html = await readFile(join(cwd, 'guide.html'), 'utf8');
  // The bundled presets' partitions, by hand.
  t.match(md, '| GPU (A100) (`gpu`) | 1–4 a100 | 1–64 | 1–480 GB | 1–8 h | 60 min | Data science (CPU), PyTorch 2.5 (CUDA 12.4), TensorFlow 2.17 (GPU) |');
  t.match(md, '| CPU only (`cpu`) | none | 1–32 | 1–250 GB | 1–24 h | never | Data science (CPU), PyTorch 2.5 (CUDA 12.4) |');
  t.match(md, '<https://ondemand.example.edu/pun/sys/dashboard/batch_connect/sys/jupyter-apptainer/session_contexts/new?slurm_partition=gpu-large&container=pytorch&num_gpus=2&bc_num_hours=4>');
  t.match(html, '<a href="https://ondemand.example.edu/pun/sys/dashboard/batch_connect/sys/jupyter-apptainer/session_contexts/new?slurm_partition=cpu&amp;container=datascience&amp;bc_num_hours=4">');
  t.match(html, '<td>CPU only (<code>cpu</code>)</td>');
  t.equal(await readFile(join(repoRoot, 'docs/user-guide.md'), 'utf8'), md, 'docs/user-guide.md is what docs writes for form-presets/ (rebuild it: ood-jupyter docs --out docs/user-guide)');
  t.equal(await readFile(join(repoRoot, 'docs/user-guide.html'), 'utf8'), html, 'and docs/user-guide.html');
  const missing = await run(['docs']);
  t.equal(missing.exitCode, 2);
  t.match(missing.stderr, /--out FILE is required/);
});

t.test('schema writes the three preset schemas, the same as the committed ones, and is in --help', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'ood-jupyter-schema-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  const result = await run(['schema', '--out', join(cwd, 'schema')]);
  t.equal(result.exitCode, 0, result.stderr);
  for (const file of ['site.schema.json', 'partition.schema.json', 'container.schema.json']) {
    t.equal(await readFile(join(cwd, 'schema', file), 'utf8'), await readFile(join('form-presets/schema', file), 'utf8'), file);
  }
  t.match((await run(['--help'])).stdout, /schema +write the JSON Schema of each preset file/);
});

t.test('init --from-slurm on a machine without Slurm: one line naming the command, nothing written', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'ood-jupyter-init-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  const result = await execa(process.execPath, [cliPath, 'init', '--from-slurm', '--dir', 'p'], { cwd, reject: false, env: { PATH: '/nonexistent' }, extendEnv: false });
  t.equal(result.exitCode, 1);
  t.match(result.stderr, /^ood-jupyter init: scontrol show partition -o failed \(is Slurm installed here\?\)/);
  t.same(await readdir(cwd), [], 'nothing written');
});

t.test('Slurm\'s text: scontrol lines, times and gres as init reads them', async (t) => {
  const { parseGres, parseScontrolLine, slurmMinutes } = await import('../src/slurm.js');
  const node = parseScontrolLine('NodeName=gpu01 CPUTot=64 Gres=gpu:a100:4(S:0-1) OS=Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC  RealMemory=515000 Partitions=gpu,all');
  t.same([node.get('NodeName'), node.get('OS'), node.get('RealMemory'), node.get('Partitions')], ['gpu01', 'Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC', '515000', 'gpu,all'], 'a value with spaces stays whole');
  t.same(['30', '30:30', '08:00:00', '2-00:00:00', '1-12', 'UNLIMITED', 'NONE'].map(slurmMinutes), [30, 30, 480, 2880, 2160, null, null]);
  t.same(parseGres('gpu:a100:4(S:0-1)'), { count: 4, type: 'a100' });
  t.same(parseGres('gpu:2'), { count: 2, type: null });
  t.same(parseGres('gpu:a100:2,gpu:v100:2'), { count: 4, type: null }, 'two types: no single type');
  t.same(parseGres('(null)'), { count: 0, type: null });
});

t.test('preview with real Ruby: the bundled gpu partition\'s defaults, a --set, and a refused value', async (t) => {
  // The machine's ruby, or (without one) CRuby in WebAssembly through test/support/ruby-via-wasm.sh.
  const hasRuby = (await execa('ruby', ['-v'], { reject: false })).exitCode === 0;
  const env = hasRuby ? {} : { OOD_JUPYTER_RUBY: join(repoRoot, 'test/support/ruby-via-wasm.sh') };
  t.comment(`Ruby for preview: ${hasRuby ? 'ruby on PATH' : 'WebAssembly CRuby'}`);
  const run = (args: string[]) => execa('node', [cliPath, ...args], { cwd: repoRoot, reject: false, env });
  const ok = await run(['preview', '--partition', 'gpu', '--set', 'num_gpus=2', '--set', 'working_dir=/srv/lab']);
  t.equal(ok.exitCode, 0, ok.stderr);
  t.match(ok.stdout, /^sbatch -p gpu -t 02:00:00 --nodes=1 --ntasks=1 --cpus-per-task=8 --mem=32G --gres=gpu:a100:2 --qos=interactive$/m);
  t.match(ok.stdout, /^set-up: module load apptainer$/m, 'the site\'s set-up line');
  t.match(ok.stdout, /^container: apptainer exec --nv (--bind \S+ )*--bind \/srv\/lab \/project\/containers\/pytorch-2\.5-cuda12\.4-jupyterlab\.sif python3 -s -c 'import sys; [^']*runpy\.run_module[^']*' jupyterlab --config=SESSION_DIR\/jupyter\/config\/jupyter_server_config\.py$/m, 'JupyterLab as python3 -m jupyterlab without the working directory on sys.path, in single quotes');
  const refused = await run(['preview', '--partition', 'gpu', '--set', 'num_gpus=9']);
  t.equal(refused.exitCode, 1);
  t.equal(refused.stdout.trim(), 'The form would refuse this launch: GPUs on the GPU (A100) partition must be between 1 and 4; you asked for 9.');
  const hostile = await run(['preview', '--partition', 'gpu', '--set', 'working_dir=/tmp/$(touch /tmp/ood-jupyter-preview-canary)']);
  t.equal(hostile.exitCode, 0, hostile.stderr);
  t.match(hostile.stdout, /--bind '\/tmp\/\$\(touch \/tmp\/ood-jupyter-preview-canary\)' /, 'shown quoted');
  t.notOk(await stat('/tmp/ood-jupyter-preview-canary').then(() => true, () => false), 'and nothing ran');
  const unknown = await run(['preview', '--partition', 'gpu', '--set', 'colour=blue']);
  t.equal(unknown.exitCode, 2);
  t.match(unknown.stderr, /--set takes id=value with a form field id/);
});

t.test('--json: validate gives the problems as data, diff the changes', async (t) => {
  const { dir, cleanup } = await presetCopy([{ file: 'partitions/gpu.yml', from: '  max: 4\n', to: '  max: four\n' }]);
  t.teardown(cleanup);
  const bad = await run(['validate', '--presets', dir, '--json']);
  t.equal(bad.exitCode, 1);
  const report = JSON.parse(bad.stdout) as { ok: boolean; problems: Array<{ file: string; line: number; field: string }> };
  t.equal(report.ok, false);
  t.same(report.problems.map((p) => [p.field, p.line]), [['gpus.max', await lineContaining(dir, 'partitions/gpu.yml', 'max: four')]]);
  const good = await run(['validate', '--json']);
  t.equal(good.exitCode, 0);
  t.same(JSON.parse(good.stdout), { ok: true, partitions: ['gpu', 'gpu-large', 'cpu'], containers: ['datascience', 'pytorch', 'tensorflow'], problems: [] });
  const cwd = await mkdtemp(join(tmpdir(), 'ood-jupyter-json-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  const diff = await run(['diff', '--out', join(cwd, 'none'), '--json']);
  t.equal(diff.exitCode, 1, 'an app not written yet: every file would be added');
  const changes = JSON.parse(diff.stdout) as Array<{ path: string; kind: string }>;
  t.ok(changes.length > 10 && changes.every((c) => c.kind === 'added'), `${changes.length} files added`);
});

t.test('doctor: colour only on a terminal without NO_COLOR; a --run-with that cannot run is one failed check', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'ood-jupyter-doctor-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  const args = ['doctor', '--run-with', 'no-such-remote-shell', '--clusters-dir', cwd];
  const piped = await run(args);
  t.equal(piped.exitCode, 1);
  t.match(piped.stdout, /^fail {4}doctor +the checks did not run with "no-such-remote-shell"/m);
  t.match(piped.stdout, /^fail {4}OOD cluster example +\S+example\.yml does not exist/m);
  t.match(piped.stdout, /^warn {4}portal origins +https:\/\/ondemand\.example\.edu looks like an example/m);
  t.notMatch(piped.stdout, /\u001b\[/, 'piped: no colour');
  // util-linux's script(1) gives the command a real terminal.
  const line = [process.execPath, cliPath, ...args].map((a) => `'${a}'`).join(' ');
  const { NO_COLOR: _set, ...plainEnv } = process.env; // tap's own environment may set NO_COLOR
  const tty = await execa('script', ['-qec', line, '/dev/null'], { cwd: repoRoot, reject: false, env: plainEnv, extendEnv: false });
  t.match(tty.stdout, /\u001b\[31mfail/, 'on a terminal: fail in red');
  const noColor = await execa('script', ['-qec', line, '/dev/null'], { cwd: repoRoot, reject: false, env: { ...plainEnv, NO_COLOR: '1' }, extendEnv: false });
  t.notMatch(noColor.stdout, /\u001b\[3\dm/, 'NO_COLOR: none');
});

t.test('doctor: what the cluster prints reaches the terminal without its control characters (no escape sequence works)', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'ood-jupyter-doctor-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  // A stand-in for "ssh login01": it ignores the checks and answers as a hostile image or host could.
  const answering = join(cwd, 'answering-shell');
  await writeFile(answering, `#!/bin/sh\ncat >/dev/null\nprintf 'warn\\timage \\033[2J\\033]0;owned\\007\\302\\23331m\\177\\000\\tits label says \\033[31mok\\033[0m\\r\\n'\n`, { mode: 0o755 });
  const failing = join(cwd, 'failing-shell');
  await writeFile(failing, `#!/bin/sh\ncat >/dev/null\nprintf 'ssh: \\033]0;owned\\007\\033[2Jcannot connect\\n' >&2\nexit 255\n`, { mode: 0o755 });
  const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/; // all but tab and newline, which the table itself prints
  const tables: string[] = [];
  for (const shell of [answering, failing]) {
    const table = await run(['doctor', '--run-with', shell, '--clusters-dir', cwd]);
    t.notMatch(table.stdout, controls, `${shell}: no control character in the table`);
    tables.push(table.stdout);
    const json = await run(['doctor', '--run-with', shell, '--clusters-dir', cwd, '--json']);
    const findings = JSON.parse(json.stdout) as Array<{ check: string; reason: string }>;
    t.notOk(findings.some((f) => controls.test(f.check) || controls.test(f.reason)), `${shell}: none in --json either`);
  }
  t.match(tables[0], /^warn {4}image \\x1b\[2J\\x1b\]0;owned\\x07\\x9b31m\\x7f\\x00 +its label says \\x1b\[31mok\\x1b\[0m$/m, 'shown, readable, as \\xNN');
  t.match(tables[1], /^fail {4}doctor +the checks did not run with ".*failing-shell": ssh: \\x1b\]0;owned\\x07\\x1b\[2Jcannot connect$/m);
});
