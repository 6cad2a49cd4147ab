// Faults on the real test node: each broken session ends with ONE plain line in output.log saying what
// failed and what to do, its job ends instead of hanging until the start timeout, and nothing of it is
// left running. Also: a partition whose Slurm settings no longer match the presets (Slurm's own reason
// reaches the researcher), and ten sessions of one researcher started at once.
// Cases elsewhere: a port taken between find_port and the bind, Jupyter Server 1.x, a broken ~/.local
// (jupyter.test.ts); a pull killed by scancel (images.test.ts); the time limit and scancel with kernels
// running (ended.test.ts).
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/build.js';
import { repoRoot } from '../support/presets.js';
import { renderViews } from '../support/ood.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { connection, outputLog, stageLaunches, submit, waitFor, type Session } from './support/session.js';
import { logIn, runInKernel } from './support/jupyter.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the end-to-end suite');
const node = new TestNode(found!);
const home = found!.home;

// The faults' own files in the node: an image nobody may read, a file that is not an image, and a
// JupyterLab that fails as it starts (its __main__ replaced by one that raises, bound over the image's).
const faults = node.hostPath('/opt/faults');
await mkdir(faults, { recursive: true });
await writeFile(join(faults, 'unreadable.sif'), '#!/usr/bin/env run-singularity\n\0SIF_MAGIC\0');
await chmod(join(faults, 'unreadable.sif'), 0o600);
await writeFile(join(faults, 'not-an-image.sif'), '<html><body>404 Not Found</body></html>\n');
await writeFile(join(faults, 'jupyterlab-main.py'), 'raise ImportError("libzmq.so.5: cannot open shared object file: No such file or directory")\n');
t.teardown(() => rm(faults, { recursive: true, force: true }));

// The suite's presets with the faulty containers added.
const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-faults-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const presets = join(work, 'presets');
await cp(join(repoRoot, 'test/e2e/presets'), presets, { recursive: true });
const container = (name: string, body: string) => writeFile(join(presets, 'containers', `${name}.yml`), body);
await container('missing', 'label: Missing image\nimage: /opt/images/missing.sif\njupyterlab: true\n');
await container('unreadable', 'label: Unreadable image\nimage: /opt/faults/unreadable.sif\njupyterlab: true\n');
await container('not-an-image', 'label: Not an image\nimage: /opt/faults/not-an-image.sif\njupyterlab: true\n');
await container('lab-crash', 'label: JupyterLab that fails at start\nimage: /opt/images/jupyterlab.sif\njupyterlab: true\n'
  + 'binds:\n  - /opt/faults/jupyterlab-main.py:/usr/lib/python3/dist-packages/jupyterlab/__main__.py:ro\n');
await container('fresh', 'label: JupyterLab, a package directory of its own\nimage: /opt/images/jupyterlab.sif\njupyterlab: true\n');
const appDir = join(work, 'jupyter-apptainer');
await buildApp(presets, appDir);
// The same, with the site's runtime `singularity` after `module load apptainer`.
const singularityPresets = join(work, 'presets-singularity');
await cp(presets, singularityPresets, { recursive: true });
const site = join(singularityPresets, 'site.yml');
await writeFile(site, (await readFile(site, 'utf8')).replace('runtime:\n  command: apptainer\n', 'runtime:\n  command: singularity\n  setup:\n    - module load apptainer\n'));
const singularityApp = join(work, 'singularity', 'jupyter-apptainer');
await buildApp(singularityPresets, singularityApp);

const form = (overrides: Record<string, string> = {}) => ({
  slurm_partition: 'cpu', container: 'jupyterlab', num_gpus: '0', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
  working_dir: '', extra_binds: '', ...overrides,
});

async function launch(values: Record<string, string>, app = appDir): Promise<Session> {
  const [staged] = await stageLaunches(node, app, [values]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  return session;
}

/** Wait for the job to leave the queue; the seconds it took from sbatch, and its output.log. */
async function ended(s: Session, ms = 90_000): Promise<{ seconds: number; log: string }> {
  await waitFor('the job to end', async () => (await node.jobState(s.jobId)) === '', ms, 250)
    .catch(async (e: Error) => { throw new Error(`${e.message}\n${await outputLog(s)}`); });
  return { seconds: (Date.now() - s.submittedAt) / 1000, log: await outputLog(s) };
}

// The app's own error lines, and the runtime's (Apptainer's FATAL), which would be a second one.
const errorLines = (log: string) => log.split('\n').filter((l) => /^ood-jupyter: ERROR|^FATAL|^ERROR/.test(l));
const leftOf = async (s: Session) => (await node.userProcesses()).filter((p) => p.includes(s.nodeRoot));

/** The one-line outcome every broken session must have. */
async function brokenSession(t: Test, s: Session, line: RegExp, what: string) {
  const { seconds, log } = await ended(s);
  const errors = errorLines(log);
  t.equal(errors.length, 1, `${what}: one error line in output.log:\n${log}`);
  t.match(errors[0] ?? '', line, `${what}: ${errors[0]}`);
  t.ok(seconds < 60, `${what}: the job ended ${seconds.toFixed(1)} s after sbatch, not after the 120 s start timeout`);
  t.same(await leftOf(s), [], `${what}: nothing of the session is left running`);
  t.notOk(existsSync(join(s.hostRoot, 'connection.yml')), `${what}: no connection.yml, so the card never offers Connect`);
  const views = await renderViews(appDir, { stagedRoot: s.hostRoot, jobId: s.jobId, status: 'completed', connection: {} });
  t.match((views.completedMd ?? '').replace(/\s+/g, ' '), /The session stopped with an error:/, `${what}: the completed view says it failed, with the line`);
}

t.test('the image is missing, unreadable, or not an image', async (t) => {
  const sessions = await Promise.all(['missing', 'unreadable', 'not-an-image'].map((c) => launch(form({ container: c }))));
  await brokenSession(t, sessions[0]!, /^ood-jupyter: ERROR: the container image \/opt\/images\/missing\.sif does not exist or cannot be read on \S+\. Choose another container/, 'missing');
  await brokenSession(t, sessions[1]!, /^ood-jupyter: ERROR: the container image \/opt\/faults\/unreadable\.sif on \S+ cannot be read by you \(its file permissions\)/, 'unreadable');
  await brokenSession(t, sessions[2]!, /^ood-jupyter: ERROR: the file \/opt\/faults\/not-an-image\.sif is not a container image Apptainer can run/, 'not an image');
});

t.test('the runtime is missing after the site set-up', async (t) => {
  // The site's runtime is `singularity`, made available by `module load apptainer`; on this node the
  // module loads, but the command is not there (hidden for this case).
  const singularity = node.hostPath('/usr/bin/singularity');
  await rename(singularity, `${singularity}.hidden`);
  t.teardown(() => rename(`${singularity}.hidden`, singularity));
  const session = await launch(form(), singularityApp);
  await brokenSession(t, session, /^ood-jupyter: ERROR: the container runtime "singularity" is not available on \S+ after the site set-up commands\. Please tell your support team\.$/, 'no runtime');
});

t.test('--nv on a node without an NVIDIA driver', async (t) => {
  // The node's stub nvidia-smi hidden: no /proc/driver/nvidia, no nvidia-smi, as on a node whose driver is gone.
  const smi = node.hostPath('/usr/local/bin/nvidia-smi');
  await rename(smi, `${smi}.hidden`);
  t.teardown(() => rename(`${smi}.hidden`, smi));
  const gpu = await launch(form({ slurm_partition: 'gpu', num_gpus: '1' }));
  const cpu = await launch(form());
  await brokenSession(t, gpu, /^ood-jupyter: ERROR: GPUs were asked for, but node \S+ has no NVIDIA driver .*tell your support team the node's name\.$/, 'GPU session');
  await waitFor('the CPU session on the same node to start', () => connection(cpu), 120_000, 250);
  t.pass('a session without GPUs on the same node starts: the driver is asked for only when GPUs are');
  await node.scancel(cpu.jobId);
});

t.test('the home directory is not writable, or full', async (t) => {
  const packages = `${home}/.local/share/ood-jupyter/packages`;
  await mkdir(node.hostPath(packages), { recursive: true });
  await node.chownToUser(`${home}/.local`);
  await rm(node.hostPath(`${packages}/fresh-py3.13`), { recursive: true, force: true });

  await t.test('not writable', async (t) => {
    await inNode(['chmod', '0555', packages], { root: true });
    t.teardown(() => inNode(['chmod', '0755', packages], { root: true }));
    const session = await launch(form({ container: 'fresh' }));
    await brokenSession(t, session, /^ood-jupyter: ERROR: cannot write to \/home\/researcher\/\.local\/share\/ood-jupyter\/packages\/fresh-py3\.13\/\S+ \(Permission denied\)\. JupyterLab, its kernels and pip need to write there/, 'read-only');
  });

  await t.test('full: the package directory', async (t) => {
    // A 1 MB file system over the package directories, filled up: as a home over its quota.
    const mounted = await inNode(['mount', '-t', 'tmpfs', '-o', `size=1m,uid=${found!.uid},mode=0755`, 'tmpfs', packages], { root: true });
    t.equal(mounted.exitCode, 0, mounted.stderr);
    t.teardown(() => inNode(['umount', packages], { root: true }));
    await inNode(['bash', '-c', `head -c 2M /dev/zero >${packages}/filler; true`]);
    const session = await launch(form({ container: 'fresh' }));
    await brokenSession(t, session, /^ood-jupyter: ERROR: cannot write to \/home\/researcher\/\.local\/share\/ood-jupyter\/packages\/fresh-py3\.13 \(No space left on device\)\./, 'full');
  });

  await t.test('full: the session directory (kernel connection files, JupyterLab\'s state)', async (t) => {
    // OOD stages the session, then the file system fills before the job starts. output.log cannot take
    // the line then; what matters is that the job ends at once and leaves nothing behind.
    const output = `${home}/ondemand/data/sys/dashboard/batch_connect/sys/jupyter-apptainer/output`;
    await mkdir(node.hostPath(output), { recursive: true });
    const mounted = await inNode(['mount', '-t', 'tmpfs', '-o', `size=4m,uid=${found!.uid},mode=0755`, 'tmpfs', output], { root: true });
    t.equal(mounted.exitCode, 0, mounted.stderr);
    t.teardown(() => inNode(['umount', '-l', output], { root: true }));
    const [staged] = await stageLaunches(node, appDir, [form()]);
    await inNode(['bash', '-c', `head -c 8M /dev/zero >${output}/filler; true`]);
    const session = await submit(node, staged!);
    t.teardown(() => node.scancel(session.jobId));
    const { seconds } = await ended(session);
    t.ok(seconds < 60, `the job ended ${seconds.toFixed(1)} s after sbatch, not after the start timeout`);
    t.same(await leftOf(session), [], 'nothing of the session is left running');
    t.notOk(existsSync(join(session.hostRoot, 'connection.yml')), 'no connection.yml');
  });
});

t.test('JupyterLab exits at start', async (t) => {
  const session = await launch(form({ container: 'lab-crash' }));
  await brokenSession(t, session, /^ood-jupyter: ERROR: JupyterLab stopped with exit status 1\. The lines above say why/, 'JupyterLab exits');
  t.match(await outputLog(session), /ImportError: libzmq\.so\.5: cannot open shared object file/, 'above it, Python\'s own reason');
});

t.test('a partition whose Slurm settings no longer match the presets: Slurm\'s own reason reaches the researcher', async (t) => {
  await t.test('a lower MaxTime: sbatch refuses, and the dashboard shows its reason', async (t) => {
    t.equal((await inNode(['scontrol', 'update', 'PartitionName=gpu', 'MaxTime=2:00:00'], { root: true })).exitCode, 0);
    t.teardown(() => inNode(['scontrol', 'update', 'PartitionName=gpu', 'MaxTime=8:00:00'], { root: true }));
    const [staged] = await stageLaunches(node, appDir, [form({ slurm_partition: 'gpu', num_gpus: '1', bc_num_hours: '4' })]);
    t.ok(staged!.launch.ok, 'the presets still allow 4 hours, so submit.yml.erb lets the launch through');
    const refused = await submit(node, staged!).then(() => '', (e: Error) => e.message);
    t.match(refused, /sbatch: error: Batch job submission failed: Requested time limit is invalid \(missing or exceeds some limit\)/,
      'sbatch\'s error, which OOD shows on the form ("Failed to submit session with the following error: …")');
  });

  await t.test('a partition set DOWN: the session waits, and its card gives Slurm\'s reason', async (t) => {
    t.equal((await inNode(['scontrol', 'update', 'PartitionName=cpu', 'State=DOWN'], { root: true })).exitCode, 0);
    t.teardown(() => inNode(['scontrol', 'update', 'PartitionName=cpu', 'State=UP'], { root: true }));
    const session = await launch(form());
    const reason = await waitFor('Slurm to give a reason', async () => {
      const r = (await inNode(['squeue', '-h', '-j', session.jobId, '-o', '%t %r'])).stdout.trim();
      return /^PD (?!None)\S+/.test(r) ? r.slice(3) : null;
    }, 30_000, 500);
    // The card as the dashboard renders it for a queued job: ood_core's Slurm adapter gives squeue's reason as info.native[:reason].
    const card = await renderViews(appDir, { stagedRoot: session.hostRoot, jobId: session.jobId, status: 'queued', info: { native: { reason } } });
    t.equal(card.infoError, null);
    t.match(card.infoMd ?? '', new RegExp(`^- \\*\\*Waiting in the queue:\\*\\* Slurm&#39;s reason: ${reason}\\. Slurm will not start this session as it is`, 'm'), `the card: ${reason}, and what to do`);
    const waiting = await renderViews(appDir, { stagedRoot: session.hostRoot, jobId: session.jobId, status: 'queued', info: { native: { reason: 'Priority' } } });
    t.match(waiting.infoMd ?? '', /^- \*\*Waiting in the queue:\*\* Slurm&#39;s reason: Priority\.$/m, 'an ordinary wait (Priority) is only named');
    const running = await renderViews(appDir, { stagedRoot: session.hostRoot, jobId: session.jobId, status: 'running', info: { native: { reason: 'None' } } });
    t.notMatch(running.infoMd ?? '', /Waiting in the queue/, 'a running session says nothing of the queue');
    await node.scancel(session.jobId);
  });
});

t.test('ten sessions of one researcher started at once', async (t) => {
  const staged = await stageLaunches(node, appDir, Array.from({ length: 10 }, () => form()));
  const sessions = await Promise.all(staged.map((s) => submit(node, s)));
  t.teardown(() => Promise.all(sessions.map((s) => node.scancel(s.jobId))));
  const connections = await Promise.all(sessions.map((s) => waitFor('connection.yml', () => connection(s), 240_000, 500)
    .catch(async (e: Error) => { throw new Error(`${e.message}\n${await outputLog(s)}`); })));
  const seconds = sessions.map((s) => (Date.now() - s.submittedAt) / 1000);
  t.equal(new Set(connections.map((c) => c.port)).size, 10, `ten ports: ${connections.map((c) => c.port).join(' ')}`);
  t.equal(new Set(connections.map((c) => c.password)).size, 10, 'ten passwords');
  const answers = await Promise.all(connections.map(async (c, i) => (await runInKernel(await logIn(c), 'python3', `print(${i} * 7)`)).stdout.trim()));
  t.same(answers, connections.map((_, i) => String(i * 7)), 'a kernel answers in each, in its own session');
  for (const s of sessions) t.same(errorLines(await outputLog(s)), [], `session ${s.jobId}: no error line`);
  t.comment(`ten sessions at once: all ten ready within ${Math.max(...seconds).toFixed(1)} s of sbatch`);
  await Promise.all(sessions.map((s) => node.scancel(s.jobId)));
  await waitFor('the ten jobs to end', async () => (await node.userJobs()).length === 0, 90_000, 500);
  // JupyterLab stops its kernels on Slurm's SIGTERM, and script.sh waits up to 3 s for slurmstepd's
  // line: a few seconds, not more (this node tracks processes by parentage, not by cgroup).
  const cancelled = Date.now();
  const left = async () => (await node.userProcesses()).filter((p) => sessions.some((s) => p.includes(s.nodeRoot)));
  await waitFor('the ten sessions\' processes to end', async () => (await left()).length === 0, 30_000, 250)
    .catch(async () => t.fail(`still running 30 s after the jobs ended:\n${(await left()).join('\n')}`));
  t.pass(`nothing of the ten is left running ${((Date.now() - cancelled) / 1000).toFixed(1)} s after their jobs left the queue`);
});
