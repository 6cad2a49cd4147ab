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
  t.match(main.stdout, /Commands:\n\s+build\s+.*\n\s+validate\s+/);
  for (const command of ['build', 'validate']) {
    const help = await run([command, '--help']);
    t.equal(help.exitCode, 0);
    t.match(help.stdout, `Usage: ood-jupyter ${command}`);
    t.match(help.stdout, '--presets DIR');
  }
});

t.test('misuse exits non-zero with one clear line', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['biuld'], /^ood-jupyter: unknown command "biuld" \(commands: build, validate; see ood-jupyter --help\)$/],
    [['build', '--ouput', 'x'], /^ood-jupyter build: Unknown option '--ouput'.*\(usage: ood-jupyter build \[--presets DIR\] \[--out DIR\]\)$/],
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
