// Staff tooling against the real test node's Slurm: `init --from-slurm` reads the cluster with the
// real scontrol and sinfo (run inside the node: the commands below are thin wrappers that call them
// there through test/node/exec.sh) and writes presets that reproduce its partitions, whose largest
// request Slurm itself accepts (sbatch --test-only).
import t from 'tap';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { buildApp } from '../../src/build.js';
import { sbatchArgs } from '../support/ood.js';
import { cliPath, repoRoot } from '../support/presets.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { stageLaunches, submit, waitFor } from './support/session.js';
import { SAFE_MAIN } from '../support/job-library.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the staff tooling suite');

const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-staff-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const bin = join(work, 'bin');
await mkdir(bin);
for (const command of ['scontrol', 'sinfo']) {
  await writeFile(join(bin, command), `#!/bin/sh\n# The test node's real ${command}, run inside the node.\nexec bash ${join(repoRoot, 'test/node/exec.sh')} -- ${command} "$@"\n`);
  await chmod(join(bin, command), 0o755);
}
const cli = (args: string[]) => execa('node', [cliPath, ...args], { cwd: work, reject: false, env: { PATH: `${bin}:${process.env.PATH}` } });

interface PartitionYml { label: string; gpus?: { type?: string; max: number; min?: number }; memoryGb: { max: number }; hours: { max: number }; cores: { max: number } }

t.test('init --from-slurm reproduces the node\'s partitions, and Slurm accepts their largest request', async (t) => {
  // The node's slurm.conf (test/node/build.sh): NodeName=localhost CPUs=2 RealMemory=8000 Gres=gpu:2;
  // PartitionName=gpu MaxTime=8:00:00; PartitionName=cpu Default=YES (no MaxTime).
  const made = await cli(['init', '--from-slurm', '--dir', 'presets']);
  t.equal(made.exitCode, 0, made.stderr);
  const dir = join(work, 'presets');
  const site = load(await readFile(join(dir, 'site.yml'), 'utf8')) as { cluster: string; partitions: string[] };
  t.same(site.partitions, ['cpu', 'gpu'], 'every partition, the default (cpu) first');
  t.equal(site.cluster, 'ood-test', 'Slurm\'s ClusterName as the cluster id to check');
  const partition = async (name: string) => load(await readFile(join(dir, `partitions/${name}.yml`), 'utf8')) as PartitionYml;
  const gpu = await partition('gpu');
  const cpu = await partition('cpu');
  t.same([gpu.hours.max, gpu.cores.max, gpu.memoryGb.max, gpu.gpus?.max, gpu.gpus?.type], [8, 2, 7, 2, undefined], 'gpu: MaxTime 8 h, 2 CPUs, 8000 MB → 7 GB, gpu:2 (no type)');
  t.same([cpu.cores.max, cpu.memoryGb.max, cpu.gpus?.max], [2, 7, 2], 'cpu: the same node');
  t.match(await readFile(join(dir, 'partitions/cpu.yml'), 'utf8'), /max: 24 # MaxTime is UNLIMITED in Slurm: choose the longest session you allow/, 'no MaxTime: a limit to choose, said so');
  const valid = await cli(['validate', '--presets', 'presets']);
  t.equal(valid.exitCode, 0, valid.stderr);

  for (const [name, p] of [['gpu', gpu], ['cpu', cpu]] as const) {
    const request = ['--test-only', '-p', name, '--nodes=1', '--ntasks=1', `--cpus-per-task=${p.cores.max}`, `--mem=${p.memoryGb.max}G`,
      ...(p.gpus ? [`--gres=gpu:${p.gpus.max}`] : []), `--time=${p.hours.max}:00:00`, '--wrap=true'];
    const tested = await inNode(['sbatch', ...request]);
    t.equal(tested.exitCode, 0, `${name}: sbatch ${request.join(' ')}: ${tested.stderr.trim()}`);
    const over = await inNode(['sbatch', '--test-only', '-p', name, '--nodes=1', `--cpus-per-task=${p.cores.max + 1}`, '--wrap=true']);
    t.not(over.exitCode, 0, `${name}: one core more is refused by Slurm (${over.stderr.trim().split('\n')[0]})`);
  }

  const again = await cli(['init', '--from-slurm', '--dir', 'presets']);
  t.equal(again.exitCode, 1, 'a second init refuses');
  t.match(again.stderr, /already has site\.yml, .*nothing was written \(--force replaces them\)/);
  await writeFile(join(dir, 'partitions/gpu.yml'), 'label: edited by staff\n', { flag: 'a' });
  t.equal((await cli(['init', '--from-slurm', '--dir', 'presets'])).exitCode, 1);
  t.match(await readFile(join(dir, 'partitions/gpu.yml'), 'utf8'), /edited by staff/, 'and the staff\'s edit is still there');
  t.equal((await cli(['init', '--from-slurm', '--dir', 'presets', '--force'])).exitCode, 0, '--force replaces');
  t.notMatch(await readFile(join(dir, 'partitions/gpu.yml'), 'utf8'), /edited by staff/);
});

t.test('init without Slurm: one example of each file, valid as it is', async (t) => {
  const made = await cli(['init', '--dir', 'plain']);
  t.equal(made.exitCode, 0, made.stderr);
  t.equal((await cli(['validate', '--presets', 'plain'])).exitCode, 0);
});

t.test('preview shows what the end-to-end suite submits for the same values, and what Slurm accepts', async (t) => {
  const node = new TestNode(found!);
  const presets = join(repoRoot, 'test/e2e/presets');
  const appDir = join(work, 'jupyter-apptainer');
  await buildApp(presets, appDir);
  const form = { slurm_partition: 'gpu', container: 'jupyterlab', num_gpus: '1', num_cores: '2', memory_gb: '2', bc_num_hours: '3', working_dir: '/tmp', extra_binds: '/tmp:/data:ro' };
  const shown = await cli(['preview', '--presets', presets, '--partition', 'gpu', '--json', ...Object.entries(form).map(([k, v]) => `--set=${k}=${v}`)]);
  t.equal(shown.exitCode, 0, shown.stderr);
  const result = JSON.parse(shown.stdout) as { sbatch: string[]; command: string; missingBinds: string[] };

  // The suite's own path: the dashboard's rendering (test/support/ood-dashboard.rb) and ood_core's
  // Slurm adapter (test/support/ood.ts), less what OOD adds for every app (job name, output, export).
  const [staged] = await stageLaunches(node, appDir, [{ ...form, cluster: 'testnode' }]);
  t.ok(staged!.launch.ok, staged!.launch.error ?? '');
  const submitted = sbatchArgs(staged!.launch.submit!, { stagedRoot: staged!.nodeRoot, jobName: 'sys/dashboard/sys/jupyter-apptainer' });
  const ownOptions = new Set(['-J', '-o', '-e', '-D', '--export']);
  const core = submitted.filter((arg, i) => !ownOptions.has(arg) && !ownOptions.has(submitted[i - 1] ?? '') && arg !== '--parsable');
  t.same(result.sbatch, core, `preview's sbatch arguments are the suite's: ${core.join(' ')}`);
  const accepted = await inNode(['sbatch', '--test-only', ...result.sbatch, '--wrap=true']);
  t.equal(accepted.exitCode, 0, `Slurm accepts them (${accepted.stderr.trim()})`);

  // The command line: the job library's, as the session's script.sh runs it (the binds that exist).
  t.equal(result.command, `apptainer exec --nv --bind /tmp:/data:ro --bind /tmp /opt/images/jupyterlab.sif python3 -s -c '${SAFE_MAIN}' jupyterlab --config=SESSION_DIR/jupyter/config/jupyter_server_config.py`);
  t.same(result.missingBinds, ['/opt/images:/mnt/site-images:ro'], 'the container bind this machine lacks is named (the node has it)');
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  // Apptainer renames its own process ("Apptainer runtime parent"): what the command line did is read
  // from the container's JupyterLab process, whose mounts are the binds.
  const pid = await waitFor('JupyterLab in the session\'s container', async () => {
    const found = await inNode(['pgrep', '-u', node.status.user, '-f', `jupyterlab --config=${session.nodeRoot}/`]);
    return found.stdout.trim().split('\n')[0] || null;
  }, 120_000, 250);
  const mounts = (await inNode(['cat', `/proc/${pid}/mountinfo`], { root: true })).stdout.split('\n').map((l) => l.split(' ')[4]);
  for (const target of ['/data', '/mnt/site-images']) t.ok(mounts.includes(target), `the session's container has ${target} mounted`);
  t.same((await inNode(['cat', `/proc/${pid}/cmdline`])).stdout.split('\0').slice(0, 6), ['/usr/bin/python3', '-s', '-c', SAFE_MAIN, 'jupyterlab', `--config=${session.nodeRoot}/jupyter/config/jupyter_server_config.py`],
    'and runs python3 -m jupyterlab without the working directory on sys.path, with the session\'s config, as shown');

  const refused = await cli(['preview', '--presets', presets, '--partition', 'cpu', '--set', 'num_gpus=1']);
  t.equal(refused.exitCode, 1);
  t.match(refused.stdout, /^The form would refuse this launch: The CPU \(test node\) partition has no GPUs/m, 'the researcher\'s message');
});

t.test('doctor on the node: passes on correct presets, fails each broken claim with its reason', async (t) => {
  const { cp } = await import('node:fs/promises');
  const base = join(work, 'doctor-presets');
  await cp(join(repoRoot, 'test/e2e/presets'), base, { recursive: true });
  // Correct presets: the suite's, without the two containers kept there to test failing sessions.
  await rm(join(base, 'containers/jupyter-server-1.yml'));
  await rm(join(base, 'containers/python3-only.yml'));
  const clusters = join(work, 'clusters.d');
  await mkdir(clusters, { recursive: true });
  await writeFile(join(clusters, 'testnode.yml'), 'v2:\n  job:\n    adapter: slurm\n');
  const runWith = `bash ${join(repoRoot, 'test/node/exec.sh')} --`;
  const doctor = (dir: string) => cli(['doctor', '--presets', dir, '--run-with', runWith, '--clusters-dir', clusters, '--json']);
  type Finding = { status: string; check: string; reason: string };
  const findingsOf = async (dir: string) => {
    const result = await doctor(dir);
    return { exitCode: result.exitCode, findings: JSON.parse(result.stdout || '[]') as Finding[], stderr: result.stderr };
  };

  const good = await findingsOf(base);
  t.equal(good.exitCode, 0, `correct presets pass: ${JSON.stringify(good.findings.filter((f) => f.status !== 'ok'))} ${good.stderr}`);
  t.same(good.findings.map((f) => f.check), ['OOD cluster testnode', 'portal origins', 'runtime apptainer', 'image jupyterlab (/opt/images/jupyterlab.sif)', 'partition gpu', 'partition cpu']);
  t.match(good.findings.find((f) => f.check === 'runtime apptainer')?.reason, /^apptainer version \d/);
  t.match(good.findings.find((f) => f.check.startsWith('image'))?.reason, /^Python 3\.\d+\.\d+, Jupyter Server 2\.\d+\.\d+, JupyterLab 4/, 'probed with the runtime');

  const broken = async (name: string, edit: (dir: string) => Promise<void>, check: string, reason: RegExp) => {
    const dir = join(work, `doctor-${name}`);
    await cp(base, dir, { recursive: true });
    await edit(dir);
    const { exitCode, findings } = await findingsOf(dir);
    t.equal(exitCode, 1, `${name}: exit 1`);
    const found = findings.find((f) => f.check === check);
    t.equal(found?.status, 'fail', `${name}: ${check} fails`);
    t.match(found?.reason, reason, `${name}: ${found?.reason}`);
  };
  await broken('missing image', (d) => writeFile(join(d, 'containers/gone.yml'), 'label: Gone\nimage: /opt/images/gone.sif\njupyterlab: true\n'),
    'image gone (/opt/images/gone.sif)', /does not exist or cannot be read here/);
  await broken('an image without what its preset claims', (d) => writeFile(join(d, 'containers/claims.yml'), 'label: Claims\nimage: /opt/images/python3-only.sif\njupyterlab: true\n'),
    'image claims (/opt/images/python3-only.sif)', /its preset says jupyterlab: true, but it lacks JupyterLab and ipykernel for its Python 3\.\d+/);
  const notSif = join(found!.home, 'not-an-image.sif');
  await writeFile(new TestNode(found!).hostPath(notSif), 'this is text, not a SIF\n');
  await broken('a file that is not an image', (d) => writeFile(join(d, 'containers/notsif.yml'), `label: Not a SIF\nimage: ${notSif}\njupyterlab: true\n`),
    `image notsif (${notSif})`, /^python3 does not run in it with apptainer: .+/);
  await broken('a partition Slurm lacks', async (d) => {
    await writeFile(join(d, 'partitions/bigmem.yml'), 'label: Big memory\nmemoryGb: {default: 1, max: 2}\nhours: {default: 1, max: 2}\ncores: {default: 1, max: 1}\n');
    await writeFile(join(d, 'site.yml'), (await readFile(join(d, 'site.yml'), 'utf8')).replace('partitions: [gpu, cpu]', 'partitions: [gpu, cpu, bigmem]'));
  }, 'partition bigmem', /^Slurm has no partition bigmem$/);
  await broken('a request Slurm refuses', async (d) => {
    const file = join(d, 'partitions/gpu.yml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/memoryGb:\n(\s+)default: (\d+)\n\s+max: \d+/, 'memoryGb:\n$1default: $2\n$1max: 100'));
  }, 'partition gpu', /^Slurm refuses its largest request \(.*--mem=100G.*\): .+/);
  await broken('a runtime missing after the site set-up', async (d) => {
    await writeFile(join(d, 'site.yml'), (await readFile(join(d, 'site.yml'), 'utf8')).replace('  command: apptainer', '  command: apptainer\n  setup:\n    - export PATH=/nowhere'));
  }, 'runtime apptainer', /not found after the site set-up lines/);
  await broken('an OOD cluster id without its file', async (d) => {
    await writeFile(join(d, 'site.yml'), (await readFile(join(d, 'site.yml'), 'utf8')).replace('cluster: testnode', 'cluster: elsewhere'));
  }, 'OOD cluster elsewhere', /clusters\.d\/elsewhere\.yml does not exist/);
});
