// The job's bash library (app-template/template/jupyter-session.sh) function by function, in real
// bash, with the generated messages.sh. OOD's own helpers (find_port, port_used, clean_up) and the
// container runtime are replaced by small shell functions defined in each case: named as stubs here.
import t from 'tap';
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jobLibrary, fakeRuntime, modernProbe, bareProbe, SAFE_MAIN } from './support/job-library.js';

const { dir, bash } = await jobLibrary(t);
const errorLines = (output: string) => output.split('\n').filter((l) => l.startsWith('ood-jupyter: ERROR'));

t.test('choose_port: an empty answer from find_port ends the job with one line, not a Python syntax error', async (t) => {
  // A node without /proc/net/tcp (free_port a stub saying so): OOD's find_port decides.
  const empty = await bash('free_port() { return 1; }; find_port() { echo "error: failed to find available port" >&2; }; choose_port node1; echo "reached port=[$port]"');
  t.not(empty.exitCode, 0);
  t.same(errorLines(empty.output).length, 1, empty.output);
  t.match(empty.output, /^ood-jupyter: ERROR: no free port for JupyterLab on /m);
  t.notMatch(empty.output, /reached/);
  const fine = await bash('free_port() { return 1; }; find_port() { echo 41234; }; choose_port node1; echo "port=$port"');
  t.equal(fine.exitCode, 0);
  t.match(fine.stdout, /^port=41234$/m);
});

t.test('wait_for_jupyter', async (t) => {
  // The host is 127.0.0.1 (bash's own connect, tried first, fails at once where nothing listens: a
  // name to resolve could wait on DNS), and port_used is a stub.
  // Stubs of OOD's job-script helpers: clean_up ends the shell, port_used answers as told. The
  // server file is the one Jupyter Server writes in its runtime directory once a port is its own.
  const stubs = 'clean_up() { echo "clean_up $1"; exit "$1"; }; mkdir -p rt;';
  const serverFile = (port: number) => `printf '{\\n  "pid": 7,\\n  "port": ${port},\\n  "url": "x"\\n}' >rt/jpserver-7.json;`;
  await t.test('no tool to test the port: one line, at once, not two lines a loop for the whole timeout', async (t) => {
    const run = await bash(`${stubs} ${serverFile(4000)} port_used() { echo call >>calls; return 127; }; wait_for_jupyter 127.0.0.1 4000 rt 60`);
    t.equal(run.exitCode, 1);
    t.same(errorLines(run.output), [errorLines(run.output)[0]], run.output);
    t.match(run.output, /^ood-jupyter: ERROR: \S+ has none of the tools the job uses to see whether JupyterLab listens/m);
    t.equal((await readFile(join(run.session, 'calls'), 'utf8')).trim().split('\n').length, 1, 'asked once');
  });
  await t.test('time is measured: a port check that takes 2 s still ends a 3 s timeout after 2 checks', async (t) => {
    const run = await bash(`${stubs} ${serverFile(4000)} port_used() { echo call >>calls; sleep 2; return 1; }; wait_for_jupyter 127.0.0.1 4000 rt 3`);
    t.equal(run.exitCode, 1);
    t.match(run.output, /^ood-jupyter: ERROR: JupyterLab was still not ready after 3 seconds \(on port 4000\)/m);
    t.equal((await readFile(join(run.session, 'calls'), 'utf8')).trim().split('\n').length, 2);
  });
  await t.test('script.sh already said why it failed: no second line', async (t) => {
    const run = await bash(`${stubs} port_used() { return 1; }; (report_failure "$msg_no_python" /x.sif); sleep 0 & wait; wait_for_jupyter 127.0.0.1 4000 rt 30 999999`);
    t.equal(run.exitCode, 1);
    t.equal(errorLines(run.output).length, 1, run.output);
    t.match(run.output, /has no python3 that runs/);
  });
  await t.test('script.sh died without a word: one line saying so', async (t) => {
    const run = await bash(`${stubs} port_used() { return 1; }; wait_for_jupyter 127.0.0.1 4000 rt 30 999999`);
    t.same(errorLines(run.output), ['ood-jupyter: ERROR: JupyterLab ended before it was ready. The lines above say why.']);
  });
  await t.test('listening, with its server file: returns at once', async (t) => {
    const run = await bash(`${stubs} ${serverFile(4000)} port_used() { [[ $1 == 127.0.0.1:4000 ]]; }; port=4000; wait_for_jupyter 127.0.0.1 4000 rt 30 && echo "ready port=$port"`);
    t.equal(run.exitCode, 0);
    t.match(run.stdout, /^ready port=4000$/m);
  });
  await t.test('another process answering on the port is not JupyterLab: no server file, no "ready"', async (t) => {
    // The race seen in CI: a process took the port after find_port; the port accepted connections,
    // after.sh said "listening", and JupyterLab then ended on "port N is not available".
    const run = await bash(`${stubs} port_used() { return 0; }; wait_for_jupyter 127.0.0.1 4000 rt 1 && echo ready`);
    t.equal(run.exitCode, 1);
    t.notMatch(run.stdout, /^ready$/m);
    t.match(run.output, /^ood-jupyter: ERROR: JupyterLab was still not ready after 1 seconds \(on port 4000\)/m);
  });
  await t.test('JupyterLab on another port than before.sh chose (script.sh moved it): port becomes that one', async (t) => {
    const run = await bash(`${stubs} ${serverFile(4321)} port_used() { [[ $1 == 127.0.0.1:4321 ]]; }; port=4000; wait_for_jupyter 127.0.0.1 4000 rt 30 && echo "ready port=$port"`);
    t.equal(run.exitCode, 0, run.output);
    t.match(run.stdout, /^ready port=4321$/m);
  });
  await t.test('a server file caught half-written names no port yet', async (t) => {
    const run = await bash(`${stubs} printf '{\\n  "pid": 7,\\n  "port": 43' >rt/jpserver-7.json; jupyter_server_port rt; echo "status $?"`);
    t.match(run.stdout, /^status 1$/m);
  });
});

t.test('run_jupyterlab: a port taken before JupyterLab binds it means a new port and one more start, not a failed session', async (t) => {
  // STUB runtime: plays JupyterLab as Jupyter Server 2.15 ends when its port is taken (its own
  // sentence), then as a JupyterLab that starts. The job's output is output.log, as under Slurm.
  const runtime = `runtime=apptainer; runtime_args=(--nv); image_path=/x.sif; jupyter_env=(A=1); host=node1; port=4000;
    free_port() { return 1; }; find_port() { echo 4999; };
    apptainer() { echo "apptainer OOD_JUPYTER_PORT=$OOD_JUPYTER_PORT $*" >>calls;
      if [[ $OOD_JUPYTER_PORT == 4000 ]]; then echo "[C 2026-12-02 ServerApp] ERROR: the Jupyter server could not be started because port 4000 is not available."; return 1; fi
      echo "[I ServerApp] Jupyter Server is running at: http://node1:$OOD_JUPYTER_PORT/"; return "\${EXIT_WITH:-0}"; };
    exec >>output.log 2>&1;`;
  const moved = await bash(`${runtime} run_jupyterlab "$PWD"; echo "status $? port=$port"`);
  const log = await readFile(join(moved.session, 'output.log'), 'utf8');
  const calls = (await readFile(join(moved.session, 'calls'), 'utf8')).trim().split('\n');
  t.match(log, /^status 0 port=4999$/m);
  t.equal(calls.length, 2, 'started twice');
  t.match(calls[0], /^apptainer OOD_JUPYTER_PORT=4000 exec --nv \/x\.sif python3 -s -c import sys; .*runpy\.run_module\(.*\) jupyterlab --config=\S+\/jupyter\/config\/jupyter_server_config\.py$/);
  t.match(calls[1], /^apptainer OOD_JUPYTER_PORT=4999 exec --nv \/x\.sif python3 -s -c import sys; .* jupyterlab --config=/);
  t.match(log, /^ood-jupyter: another process took port 4000 before JupyterLab could; starting it on another port\.$/m);
  t.same(errorLines(log), [], 'no error line: the session starts');

  // Any other failure is JupyterLab's own: returned as it is, no second start.
  const failing = await bash(`${runtime} port=4100; EXIT_WITH=1 run_jupyterlab "$PWD"; echo "status $?"`);
  t.match(await readFile(join(failing.session, 'output.log'), 'utf8'), /^status 1$/m);
  t.equal((await readFile(join(failing.session, 'calls'), 'utf8')).trim().split('\n').length, 1, 'started once');

  // A port taken every time: three starts, then JupyterLab's own status (script.sh reports it once).
  const always = await bash(`${runtime} free_port() { return 1; }; find_port() { echo 4000; }; run_jupyterlab "$PWD"; echo "status $?"`);
  t.match(await readFile(join(always.session, 'output.log'), 'utf8'), /^status 1$/m);
  t.equal((await readFile(join(always.session, 'calls'), 'utf8')).trim().split('\n').length, 3, 'three starts at most');
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

// A STUB runtime: `fake_runtime exec ARGS... IMAGE python3 -c CODE probe` prints $PROBE and counts
// its calls; `fake_runtime pull DEST URI` counts, waits $PULL_SECONDS and writes DEST.
t.test('parse_registry_uri reads URIs as docker and oras do', async (t) => {
  const cases: Array<[string, string]> = [
    ['docker://python:3.12', 'registry-1.docker.io library/python 3.12'],
    ['docker://pytorch/pytorch', 'registry-1.docker.io pytorch/pytorch latest'],
    ['docker://ghcr.io/org/team/img:v1.2', 'ghcr.io org/team/img v1.2'],
    [`docker://localhost:5000/lab/py@sha256:${'a'.repeat(64)}`, `localhost:5000 lab/py sha256:${'a'.repeat(64)}`],
    ['oras://registry.example.edu/sifs/torch:2.5', 'registry.example.edu sifs/torch 2.5'],
    ['docker://nvcr.io/nvidia/pytorch:24.10-py3', 'nvcr.io nvidia/pytorch 24.10-py3'],
  ];
  for (const [uri, expected] of cases) {
    const run = await bash(`parse_registry_uri ${JSON.stringify(uri)}; echo "$registry_host $registry_repo $registry_ref"`);
    t.equal(run.stdout, expected, uri);
  }
});

t.test('choose_jupyter: the image, else the site overlay, else one line and a definition file', async (t) => {
  const own = await bash(`${fakeRuntime}; image_id=a; resolve_image() { :; }; choose_jupyter img && echo "overlay=[$jupyter_overlay]"`, { PROBE: modernProbe, CALLS: '/dev/null', HOME: dir });
  t.match(own.stdout, /^overlay=\[\]$/m, 'an image with JupyterLab uses its own');

  const overlays = join(dir, 'overlays');
  await mkdir(join(overlays, 'python3.13/site-packages'), { recursive: true });
  // The stub answers the overlay probe (PYTHONPATH set) with JupyterLab present.
  const withOverlay = await bash(`${fakeRuntime.replace('printf "%s\\n" "$PROBE"', 'if [[ -n ${PYTHONPATH:-} ]]; then printf "%s\\n" "$LAB"; else printf "%s\\n" "$PROBE"; fi')}; image_id=b overlays_dir=${overlays} user_install=0
    choose_jupyter img && echo "overlay=[$jupyter_overlay] args=[\${runtime_args[*]}]"`, { PROBE: bareProbe, LAB: modernProbe, CALLS: '/dev/null', HOME: join(dir, 'home-overlay') });
  t.match(withOverlay.stdout, new RegExp(`^ood-jupyter: the image lacks JupyterLab and ipykernel; using the site's JupyterLab for Python 3\\.13 \\(${overlays}/python3\\.13\\)\\.$`, 'm'));
  t.match(withOverlay.stdout, new RegExp(`^overlay=\\[${overlays}/python3\\.13\\] args=\\[--bind ${overlays}/python3\\.13:${overlays}/python3\\.13:ro\\]$`, 'm'), 'bound read-only');

  const none = await bash(`${fakeRuntime}; image_id=c image_path=/img.sif overlays_dir= user_install=0; choose_jupyter img; echo unreachable`, { PROBE: bareProbe, CALLS: '/dev/null', HOME: join(dir, 'home-none') });
  t.not(none.exitCode, 0);
  t.same(errorLines(none.output).length, 1, none.output);
  t.match(none.output, /^ood-jupyter: ERROR: the image \/img\.sif lacks JupyterLab and ipykernel for its Python 3\.13, and this site has no JupyterLab for that Python\. A definition file/m);
  t.equal(await readFile(join(none.session, 'jupyterlab-image.def'), 'utf8'), [
    '# Written by ood-jupyter: the image /img.sif',
    '# with JupyterLab and ipykernel added. Build it where there is network, then launch the new image:',
    `#   apptainer build jupyterlab.sif ${join(none.session, 'jupyterlab-image.def')}`,
    'Bootstrap: localimage', 'From: /img.sif', '', '%post', '    python3 -m pip install --no-cache-dir jupyterlab ipykernel', '',
  ].join('\n'), 'the definition file (reviewed text)');
  t.notMatch(none.stdout, /unreachable/);
});

t.test('probe_python is cached by image identity', async (t) => {
  const calls = join(dir, 'probe-calls');
  const home = join(dir, 'home-probe');
  const twice = `${fakeRuntime}; image_id=file:/img.sif:1; probe_python; probe_python; echo "python=$py_version lab=$py_lab"`;
  const run = await bash(twice, { PROBE: modernProbe, CALLS: calls, HOME: home });
  t.match(run.stdout, /^python=3\.12\.3 lab=4\.2\.5$/m);
  t.equal((await readFile(calls, 'utf8')).trim().split('\n').length, 1, 'the container ran once for two probes');
  await bash(`${fakeRuntime}; image_id=file:/img.sif:2; probe_python`, { PROBE: modernProbe, CALLS: calls, HOME: home });
  t.equal((await readFile(calls, 'utf8')).trim().split('\n').length, 2, 'a changed image (new identity) is probed again');
  const failed = await bash(`${fakeRuntime}; image_id=file:/other.sif:1; probe_python; probe_python; echo "python=[$py_version]"`, { PROBE: '', CALLS: calls, HOME: home });
  t.match(failed.stdout, /^python=\[\]$/m);
  t.equal((await readFile(calls, 'utf8')).trim().split('\n').length, 4, 'a probe that got no answer is not remembered');
});

t.test('pull_image: one pull for sessions that start together; a killed pull is never used', async (t) => {
  const cache = join(dir, 'pull-cache');
  const calls = join(dir, 'pull-calls');
  const digest = `sha256:${'b'.repeat(64)}`;
  const pull = `${fakeRuntime}; pull_image ${cache} docker://localhost:5000/lab/py:latest ${digest}; echo "image=$image_path"`;
  const home = join(dir, 'home-pull');
  const together = await Promise.all([0, 1, 2].map(() => bash(pull, { CALLS: calls, PULL_SECONDS: '1', HOME: home })));
  t.same(together.map((r) => r.exitCode), [0, 0, 0], together.map((r) => r.output).join('\n'));
  t.equal((await readFile(calls, 'utf8')).trim(), `pull docker://localhost:5000/lab/py@${digest}`, 'pulled once, pinned to the digest');
  t.ok(together.every((r) => r.stdout.includes(`image=${cache}/${'b'.repeat(64)}.sif`)), 'all three use the one file');
  t.equal(together.filter((r) => /another session is pulling/.test(r.stdout)).length, 2, 'the other two say they wait');

  // A pull killed halfway: its temporary file stays, but no image under the digest appears.
  const killedDigest = `sha256:${'c'.repeat(64)}`;
  const slow = execa('bash', ['--norc', '--noprofile', '-c', `source ${dir}/messages.sh; source ${dir}/jupyter-session.sh; ${fakeRuntime}; pull_image ${cache} docker://localhost:5000/lab/py:v2 ${killedDigest}`],
    { env: { PATH: '/usr/bin:/bin', CALLS: calls, PULL_SECONDS: '30', HOME: home }, extendEnv: false, reject: false, detached: true });
  for (let i = 0; i < 100 && !(await readFile(calls, 'utf8')).includes('v2'.replace('v2', 'c'.repeat(8))); i++) await new Promise((r) => setTimeout(r, 50));
  process.kill(-slow.pid!, 'SIGKILL');
  await slow;
  await writeFile(join(cache, `.pull-${'c'.repeat(64)}.12345.sif`), 'half an image');
  const after = await bash(`${fakeRuntime}; pull_image ${cache} docker://localhost:5000/lab/py:v2 ${killedDigest}; ls -a ${cache}`, { CALLS: calls, HOME: home });
  t.equal(after.exitCode, 0, after.output);
  t.match(after.stdout, /^ood-jupyter: pulling docker:\/\/localhost:5000\/lab\/py:v2 into /m, 'the next session pulls again');
  t.notMatch(after.stdout, /\.pull-c/, 'and removes what the killed pull left');
  t.equal(await readFile(join(cache, `${'c'.repeat(64)}.sif`), 'utf8'), `SIF of docker://localhost:5000/lab/py@${killedDigest}\n`, 'the image is the complete pull');
});

t.test('write_kernels: the image kernel, the environments that run, one line for each that does not', async (t) => {
  const home = join(dir, 'home-kernels');
  await mkdir(join(home, 'venvs/ok/bin'), { recursive: true });
  await writeFile(join(home, 'venvs/ok/bin/python'), '');
  const environments = [
    `env\t${home}/venvs/ok\tvenv\t${home}/venvs/ok/bin/python\t3.12`,
    `skip\t${home}/venvs/old\tvenv\tits Python (/usr/bin/python3.9) does not run in this container`,
    `carried\t${home}/venvs/ok\tvenv\tir\t${home}/venvs/ok/share/jupyter/kernels/ir\t{"argv":["R"],"display_name":"R (venv: ok)","language":"R"}`,
  ].join('\n');
  const fake = fakeRuntime.replace('printf "%s\\n" "$PROBE"', 'for a in "$@"; do [[ $a == environments ]] && { printf "%s\\n" "$ENVS"; return; }; done; printf "%s\\n" "$PROBE"');
  const run = await bash(`${fake}; image_id=k hide_host_user_site=1 jupyter_overlay= container_env=() env_search_dirs=(); probe_python; prepare_package_dir img
    write_kernels "$PWD/kernels" 'Python 3 (Image "x")'; printf '%s\\n' "\${kernel_names[@]}"`, { PROBE: modernProbe, ENVS: environments, CALLS: '/dev/null', HOME: home });
  t.equal(run.exitCode, 0, run.output);
  t.match(run.stdout, new RegExp(`^ood-jupyter: no kernel for the environment ${home}/venvs/old: its Python \\(/usr/bin/python3\\.9\\) does not run in this container\\.$`, 'm'));
  const kernels = join(run.session, 'kernels');
  const image = JSON.parse(await readFile(join(kernels, 'python3/kernel.json'), 'utf8'));
  t.same(image, {
    argv: ['/usr/bin/python3', '-c', SAFE_MAIN, 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Python 3 (Image "x")', language: 'python',
    env: { PYTHONPATH: `${home}/.local/share/ood-jupyter/packages/img-py3.12/lib/python3.12/site-packages` }, metadata: { debugger: true },
  }, 'the image kernel: its Python, the package directory on PYTHONPATH, a quoted label');
  t.same(run.stdout.split('\n').filter((l) => !l.startsWith('ood-jupyter')), ['Python 3 (Image "x")', 'Python 3.12 (venv: ok)', 'ir (venv: ok)']);
});

t.test('discover_environments asks the container once while the environments stay as they are', async (t) => {
  const home = join(dir, 'home-discover');
  await mkdir(join(home, 'venvs/a/bin'), { recursive: true });
  await writeFile(join(home, 'venvs/a/bin/python'), '');
  const calls = join(dir, 'discover-calls');
  const fake = fakeRuntime.replace('printf "%s\\n" "$PROBE"', 'printf "env\\t%s/venvs/a\\tvenv\\t%s/venvs/a/bin/python\\t3.12\\n" "$HOME" "$HOME"');
  const discover = `${fake}; image_id=d env_search_dirs=(); discover_environments`;
  const first = await bash(discover, { CALLS: calls, HOME: home });
  const second = await bash(discover, { CALLS: calls, HOME: home });
  t.equal(first.stdout, `env\t${home}/venvs/a\tvenv\t${home}/venvs/a/bin/python\t3.12`);
  t.equal(second.stdout, first.stdout, 'the same answer from the cache');
  t.equal((await readFile(calls, 'utf8')).trim().split('\n').length, 1, 'one container start for two sessions');
  await mkdir(join(home, 'venvs/b/bin'), { recursive: true });
  await writeFile(join(home, 'venvs/b/bin/python3'), '');
  await bash(discover, { CALLS: calls, HOME: home });
  t.equal((await readFile(calls, 'utf8')).trim().split('\n').length, 2, 'a new environment is looked at');
});

t.test('python_environment: ~/.local hidden by default; a site that turns it off gets it back on the kernels\' path', async (t) => {
  const show = `${fakeRuntime}; image_id=e jupyter_overlay= container_env=('A=1 2'); probe_python; prepare_package_dir img; python_environment
    printf '%s\\n' "\${python_env[@]}" "KERNEL=$kernel_pythonpath"`;
  const hidden = await bash(`hide_host_user_site=1; ${show}`, { PROBE: modernProbe, CALLS: '/dev/null', HOME: join(dir, 'home-env') });
  const pkg = `${join(dir, 'home-env')}/.local/share/ood-jupyter/packages/img-py3.12`;
  t.same(hidden.stdout.split('\n').filter((l) => !l.startsWith('ood-jupyter:')), [
    'PYTHONNOUSERSITE=1', `PYTHONUSERBASE=${pkg}`, 'PIP_USER=1', 'PIP_BREAK_SYSTEM_PACKAGES=1', `APPTAINERENV_PREPEND_PATH=${pkg}/bin`,
    'APPTAINERENV_A=1 2', `KERNEL=${pkg}/lib/python3.12/site-packages`,
  ]);
  const shown = await bash(`hide_host_user_site=0; ${show}`, { PROBE: modernProbe, CALLS: '/dev/null', HOME: join(dir, 'home-env') });
  t.notMatch(shown.stdout, /PYTHONNOUSERSITE/);
  t.match(shown.stdout, new RegExp(`^KERNEL=${pkg}/lib/python3\\.12/site-packages:${join(dir, 'home-env')}/\\.local/lib/python3\\.12/site-packages$`, 'm'));
});

t.test('ended_by_signal tells a time limit from a cancel by the job\'s start and limit (squeue: a stub function)', async (t) => {
  const at = (startAgo: number, limit: string) => bash(`squeue() { echo "$(date -d @$(( $(date +%s) - ${startAgo} )) +%Y-%m-%dT%H:%M:%S) ${limit}"; }; ended_by_signal`, { SLURM_JOB_ID: '7' });
  t.equal((await at(3600, '1:00:00')).stdout, 'time-limit', 'an hour into a 1-hour job');
  t.equal((await at(600, '1:00:00')).stdout, 'cancelled', '10 minutes into it');
  t.equal((await at(61, '1:00')).stdout, 'time-limit', 'a limit of one minute (minutes:seconds)');
  t.equal((await at(90000, '1-01:00:00')).stdout, 'time-limit', 'days-hours:minutes:seconds');
  t.equal((await at(60, 'UNLIMITED')).stdout, 'cancelled', 'no limit: a cancel');
  const env = await bash('squeue() { return 1; }; ended_by_signal', { SLURM_JOB_START_TIME: String(Math.floor(Date.now() / 1000) - 120), SLURM_JOB_END_TIME: String(Math.floor(Date.now() / 1000) - 5) });
  t.equal(env.stdout, 'time-limit', 'without squeue: the job\'s own SLURM_JOB_START_TIME and SLURM_JOB_END_TIME');
});

t.test('record_jupyter_exit waits a moment for slurmstepd\'s line, which may come after JupyterLab stopped', async (t) => {
  // squeue: a stub that would call it a cancel (10 minutes into a 1-hour job); slurmstepd's own line says otherwise.
  const squeue = 'squeue() { echo "$(date -d @$(( $(date +%s) - 600 )) +%Y-%m-%dT%H:%M:%S) 1:00:00"; };';
  const late = (line: string) => bash(`${squeue} session_end_record=$PWD/ended; : >output.log;
    (sleep 1; echo "slurmstepd: error: *** JOB 7 ON vm ${line} ***" >>output.log) &
    record_jupyter_exit 143 1 output.log; wait; head -n 1 ended`, { SLURM_JOB_ID: '7' });
  t.equal((await late('CANCELLED AT 2026-12-02T20:00:00 DUE TO TIME LIMIT')).stdout, 'time-limit', 'the time limit, said a second late');
  t.equal((await late('CANCELLED AT 2026-12-02T20:00:00')).stdout, 'cancelled', 'a cancel, said a second late');
  const none = await bash(`${squeue} session_end_record=$PWD/ended; : >output.log; record_jupyter_exit 143 1 output.log; head -n 1 ended`, { SLURM_JOB_ID: '7' });
  t.equal(none.stdout, 'cancelled', 'no line at all: the job\'s start and limit decide');
});

t.test('resolve_image: a missing file, one nobody may read and one that is no image each get their own line', async (t) => {
  // A SIF's start (its launch line, then SIF_MAGIC), a SquashFS image's, an ext3 image's (0xEF53 at 1080).
  await writeFile(join(dir, 'real.sif'), Buffer.concat([Buffer.from('#!/usr/bin/env run-singularity\n\0SIF_MAGIC\0'), Buffer.alloc(64)]));
  await writeFile(join(dir, 'squash.img'), Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(64)]));
  const ext3 = Buffer.alloc(2048);
  ext3.writeUInt16LE(0xef53, 1080);
  await writeFile(join(dir, 'ext3.img'), ext3);
  await writeFile(join(dir, 'page.sif'), '<html>404</html>\n');
  await writeFile(join(dir, 'empty.sif'), '');
  for (const name of ['real.sif', 'squash.img', 'ext3.img']) {
    const run = await bash(`resolve_image ${dir}/${name}; echo "path=$image_path"`);
    t.equal(run.exitCode, 0, `${name}: ${run.output}`);
    t.match(run.stdout, `path=${dir}/${name}`);
  }
  for (const name of ['page.sif', 'empty.sif']) {
    const run = await bash(`resolve_image ${dir}/${name}; echo reached`);
    t.equal(run.exitCode, 1);
    t.same(errorLines(run.output), [`ood-jupyter: ERROR: the file ${dir}/${name} is not a container image Apptainer can run (it has no SIF or SquashFS header; it may be incomplete). Choose another container, or ask your support team to check the image.`], run.output);
  }
  const missing = await bash(`resolve_image ${dir}/nothing.sif`);
  t.match(errorLines(missing.output)[0] ?? '', /the container image \S+nothing\.sif does not exist/);
  const directory = await bash(`resolve_image ${dir}`);
  t.match(errorLines(directory.output)[0] ?? '', /cannot be read by you/, 'a directory is no image file');
});

t.test('make_dir and check_writable: one line with the reason, never mkdir\'s or bash\'s own', async (t) => {
  const blocked = join(dir, 'blocked');
  await writeFile(blocked, 'a file where a directory should be');
  const mk = await bash(`make_dir ${blocked}/packages/x; echo reached`);
  t.equal(mk.exitCode, 1);
  t.same(mk.output.split('\n'), [`ood-jupyter: ERROR: cannot write to ${blocked}/packages/x (Not a directory). JupyterLab, its kernels and pip need to write there: free some space in your home directory (it, or its quota, may be full) or fix its permissions, and launch again.`]);
  const fine = await bash(`make_dir ${dir}/made/a/b && check_writable ${dir}/made/a/b "$PWD" && ls -A ${dir}/made/a/b | wc -l`);
  t.equal(fine.exitCode, 0, fine.output);
  t.equal(fine.stdout.trim(), '0', 'the test write leaves nothing behind');
  // /dev/full: every write fails with ENOSPC, as on a full file system.
  const full = await bash('mkdir full && ln -s /dev/full full/.ood-jupyter-write-test.$$ && check_writable full; echo reached');
  t.equal(full.exitCode, 1);
  t.same(errorLines(full.output).length, 1, full.output);
  t.match(full.output, /^ood-jupyter: ERROR: cannot write to full \(No space left on device\)\./);
  t.equal(full.output.split('\n').length, 1, 'and nothing else');
});

t.test('prepare_runtime: GPUs asked for on a node without an NVIDIA driver end the job; without GPUs nothing is asked', async (t) => {
  const stubs = 'runtime=true; site_setup=(); container_setup=(); container_gpu_setup=();';
  const gpu = await bash(`${stubs} gpu_count=1; prepare_runtime; echo reached`);
  t.equal(gpu.exitCode, 1);
  t.match(gpu.output, /^ood-jupyter: ERROR: GPUs were asked for, but node \S+ has no NVIDIA driver/);
  t.equal(gpu.output.split('\n').length, 1);
  const cpu = await bash(`${stubs} gpu_count=0; prepare_runtime; echo reached`);
  t.equal(cpu.stdout.trim(), 'reached');
  // A stub nvidia-smi on PATH (this machine has no GPU): a node with a driver.
  await mkdir(join(dir, 'bin'), { recursive: true });
  await writeFile(join(dir, 'bin/nvidia-smi'), '#!/bin/sh\necho stub\n', { mode: 0o755 });
  const withDriver = await bash(`${stubs} gpu_count=1; prepare_runtime; echo reached`, { PATH: `${dir}/bin:/usr/bin:/bin` });
  t.equal(withDriver.stdout.trim(), 'reached', withDriver.output);
});

t.test('choose_port: a port nothing listens on, from /proc/net/tcp, without a program per try; find_port where there is none', async (t) => {
  // A listening socket of this machine's (a real one, opened for the test): never chosen.
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const taken = (server.address() as { port: number }).port;
  const run = await bash(`find_port() { echo "find_port was called" >&2; echo 1; }
    declare -A seen=(); for i in $(seq 100); do choose_port node1; seen[$port]=1; done
    echo "distinct=\${#seen[@]} taken=\${seen[${taken}]:-no}"; free_port; echo "last=$port"`);
  t.equal(run.exitCode, 0, run.output);
  t.notMatch(run.stderr, /find_port was called/, 'OOD\'s find_port is not needed where /proc/net/tcp is');
  t.match(run.stdout, /^distinct=\d+ taken=no$/m, 'a listening port is never chosen');
  t.ok(Number(/distinct=(\d+)/.exec(run.stdout)![1]) > 80, `ports spread over the range: ${run.stdout}`);
  // The Fetch standard's "bad ports" (fetch() and browsers refuse them: a test's fetch failed once on one).
  // bash's RANDOM, seeded, repeats its draws: find a seed whose first draw is port 6000 (X11), then
  // seed free_port with it.
  const bad = await bash(`for ((seed = 1; seed < 2000000; seed++)); do RANDOM=$seed; c=$((2000 + (RANDOM * 32768 + RANDOM) % 63536)); [[ $c == 6000 ]] && break; done
    RANDOM=$seed; c=$((2000 + (RANDOM * 32768 + RANDOM) % 63536)); RANDOM=$seed; free_port; echo "first draw $c, chosen $port"`);
  t.match(bad.stdout, /^first draw 6000, chosen (?!6000$)\d+$/, `a draw of a port fetch() refuses is drawn again: ${bad.stdout}`);
  const last = Number(/last=(\d+)/.exec(run.stdout)![1]);
  t.ok(last >= 2000 && last <= 65535, `within OOD's range: ${last}`);
  // Every port of the range "listening" (a stand-in /proc read through a function): find_port decides.
  const full = await bash(`free_port() { return 1; }; find_port() { echo 41234; }; choose_port node1; echo "port=$port"`);
  t.match(full.stdout, /^port=41234$/m, 'without /proc/net/tcp, OOD\'s find_port');
});

t.test('wait_for_jupyter: a real listener on the port of the server file is seen by bash itself, within 50 ms of the file', async (t) => {
  const { createServer } = await import('node:net');
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as { port: number }).port;
  const run = await bash(`clean_up() { exit "$1"; }; mkdir -p rt; port_used() { echo "port_used was called" >&2; return 1; }
    (sleep 0.3; printf '{\\n  "pid": 7,\\n  "port": ${port},\\n  "url": "x"\\n}' >rt/jpserver-7.json; echo "\${EPOCHREALTIME/./}" >written) &
    wait_for_jupyter 127.0.0.1 ${port} rt 30 && echo "seen \${EPOCHREALTIME/./} written $(<written) port=$port"`);
  t.equal(run.exitCode, 0, run.output);
  t.notMatch(run.stderr, /port_used was called/, 'no port_used program');
  const [, seen, written] = /seen (\d+) written (\d+)/.exec(run.stdout)!.map(Number);
  t.ok((seen! - written!) / 1000 < 100, `seen ${((seen! - written!) / 1000).toFixed(1)} ms after the file was written (polled every 50 ms)`);
});
