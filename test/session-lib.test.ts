// The job's bash library (app-template/template/jupyter-session.sh) function by function, in real
// bash, with the generated messages.sh. OOD's own helpers (find_port, port_used, clean_up) and the
// container runtime are replaced by small shell functions defined in each case: named as stubs here.
import t from 'tap';
import { execa } from 'execa';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderFromPresets } from '../src/build.js';
import { bundledPresets } from './support/presets.js';

const dir = await mkdtemp(join(tmpdir(), 'ood-jupyter-lib-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
for (const file of await renderFromPresets(bundledPresets)) {
  if (file.path === 'template/jupyter-session.sh' || file.path === 'template/messages.sh') {
    await writeFile(join(dir, file.path.slice('template/'.length)), file.content);
  }
}

/** Run `script` in bash after sourcing messages.sh and the library, in a session directory of its own. */
async function bash(script: string, env: Record<string, string> = {}) {
  const session = await mkdtemp(join(dir, 'session-'));
  const result = await execa('bash', ['--norc', '--noprofile', '-c', `source ${dir}/messages.sh; source ${dir}/jupyter-session.sh; ${script}`], {
    cwd: session, reject: false, env: { PATH: '/usr/bin:/bin', ...env }, extendEnv: false,
  });
  return { ...result, output: `${result.stdout}\n${result.stderr}`.trim(), session };
}

const errorLines = (output: string) => output.split('\n').filter((l) => l.startsWith('ood-jupyter: ERROR'));

t.test('choose_port: an empty answer from find_port ends the job with one line, not a Python syntax error', async (t) => {
  const empty = await bash('find_port() { echo "error: failed to find available port" >&2; }; choose_port node1; echo "reached port=[$port]"');
  t.not(empty.exitCode, 0);
  t.same(errorLines(empty.output).length, 1, empty.output);
  t.match(empty.output, /^ood-jupyter: ERROR: no free port for JupyterLab on /m);
  t.notMatch(empty.output, /reached/);
  const fine = await bash('find_port() { echo 41234; }; choose_port node1; echo "port=$port"');
  t.equal(fine.exitCode, 0);
  t.match(fine.stdout, /^port=41234$/m);
});

t.test('wait_for_jupyter', async (t) => {
  // Stubs of OOD's job-script helpers: clean_up ends the shell, port_used answers as told.
  const stubs = 'clean_up() { echo "clean_up $1"; exit "$1"; };';
  await t.test('no tool to test the port: one line, at once, not two lines a loop for the whole timeout', async (t) => {
    const run = await bash(`${stubs} port_used() { echo call >>calls; return 127; }; wait_for_jupyter node1 4000 60`);
    t.equal(run.exitCode, 1);
    t.same(errorLines(run.output), [errorLines(run.output)[0]], run.output);
    t.match(run.output, /^ood-jupyter: ERROR: \S+ has none of the tools the job uses to see whether JupyterLab listens/m);
    t.equal((await readFile(join(run.session, 'calls'), 'utf8')).trim().split('\n').length, 1, 'asked once');
  });
  await t.test('time is measured: a port check that takes 2 s still ends a 3 s timeout after 2 checks', async (t) => {
    const run = await bash(`${stubs} port_used() { echo call >>calls; sleep 2; return 1; }; wait_for_jupyter node1 4000 3`);
    t.equal(run.exitCode, 1);
    t.match(run.output, /^ood-jupyter: ERROR: JupyterLab did not start listening on port 4000 within 3 seconds/m);
    t.equal((await readFile(join(run.session, 'calls'), 'utf8')).trim().split('\n').length, 2);
  });
  await t.test('script.sh already said why it failed: no second line', async (t) => {
    const run = await bash(`${stubs} port_used() { return 1; }; (report_failure "$msg_no_jupyter_lab" /x.sif); sleep 0 & wait; wait_for_jupyter node1 4000 30 999999`);
    t.equal(run.exitCode, 1);
    t.equal(errorLines(run.output).length, 1, run.output);
    t.match(run.output, /has no JupyterLab and ipykernel/);
  });
  await t.test('script.sh died without a word: one line saying so', async (t) => {
    const run = await bash(`${stubs} port_used() { return 1; }; wait_for_jupyter node1 4000 30 999999`);
    t.same(errorLines(run.output), ['ood-jupyter: ERROR: JupyterLab ended before it was ready. The lines above say why.']);
  });
  await t.test('listening: returns at once', async (t) => {
    const run = await bash(`${stubs} port_used() { [[ $1 == node1:4000 ]]; }; wait_for_jupyter node1 4000 30 && echo ready`);
    t.equal(run.exitCode, 0);
    t.match(run.stdout, /^ready$/m);
  });
});

t.test('run_site_setup and ensure_module_command', async (t) => {
  const profile = join(dir, 'profile.d');
  await mkdir(profile, { recursive: true });
  // A site's module function, defined for bash in its profile.d (as Lmod and Environment Modules do).
  await writeFile(join(profile, 'modules.sh'), 'module() { [[ $1 == load ]] && export LOADED_MODULES="${LOADED_MODULES:+$LOADED_MODULES:}$2"; }\nexport PATH=/site/bin:$PATH\n');
  await t.test('no module function in the shell (a tcsh login): the site profile defines it, PATH stays ours first', async (t) => {
    const run = await bash(`ensure_module_command ${profile} && module load apptainer && echo "loaded=$LOADED_MODULES path=$PATH"`);
    t.equal(run.exitCode, 0, run.output);
    t.match(run.stdout, /^loaded=apptainer path=\/usr\/bin:\/bin:\/site\/bin:/m);
  });
  await t.test('a set-up line that fails ends the job with one line naming it', async (t) => {
    const run = await bash('run_site_setup "export A=1" "false" "echo never"');
    t.equal(run.exitCode, 1);
    t.same(errorLines(run.output).length, 1, run.output);
    t.match(run.output, /^ood-jupyter: ERROR: the site set-up command "false" failed on /m);
    t.notMatch(run.output, /never/);
  });
  await t.test('set-up lines change the shell they run in', async (t) => {
    const run = await bash('run_site_setup "export A=1" "B=2"; echo "A=$A B=$B"');
    t.match(run.stdout, /^A=1 B=2$/m);
  });
});

t.test('check_image reads the probe (runtime replaced by a stub function)', async (t) => {
  const runtime = 'fake_runtime() { printf "%s\\n" "$PROBE"; };';
  const modern = await bash(`${runtime} check_image fake_runtime /img.sif && echo usable`, { PROBE: 'python=3.12.3\njupyter_server=2.15.0\njupyterlab=4.2.5\nipykernel=6.29.5' });
  t.match(modern.stdout, /^usable$/m);
  const old = await bash(`${runtime} check_image fake_runtime /img.sif && echo usable`, { PROBE: 'python=3.11.2\njupyter_server=1.23.3\njupyterlab=3.6.1\nipykernel=6.17.0' });
  t.same(errorLines(old.output).length, 1);
  t.match(old.output, /the image \/img\.sif has Jupyter Server 1\.23\.3; this app needs Jupyter Server 2 or later/);
  const bare = await bash('fake_runtime() { return 127; }; check_image fake_runtime /img.sif && echo usable');
  t.match(bare.output, /the image \/img\.sif has no JupyterLab and ipykernel/);
});
