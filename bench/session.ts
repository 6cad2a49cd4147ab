// The node part of `npm run bench`: what a researcher waits for on the test node (test/node/), next to a
// bare JupyterLab job with the same Slurm resources; before.sh step by step; what a warm start touches
// (output.log's probe and pull lines, connect() calls under strace, the registry's access log); and
// docker:// pulls, one for ten sessions started at once. Every session is launched as the end-to-end
// suite launches it (test/e2e/support): rendered by real Ruby as OOD renders it, OOD's job script,
// sbatch with the arguments of OOD's Slurm adapter, JupyterLab reached with the official client.
//
// Run it holding the node lock, as the end-to-end suite is run, so nothing else disturbs the timings:
//   flock /tmp/ood-node.lock npm run bench -- session
// Times are taken on one clock: the node shares the host's, so the job's own marks (jupyter/phases,
// written by mark_phase in jupyter-session.sh), file times and the client's Date.now() compare.
import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelManager, ServerConnection } from '@jupyterlab/services';
import WebSocket from 'ws';
import { buildApp } from '../src/build.js';
import { jobMessages } from '../src/messages.js';
import { repoRoot } from '../test/support/presets.js';
import { sbatchArgs, type LaunchResult } from '../test/support/ood.js';
import { jobScript } from '../test/support/basic-template.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, TestNode } from '../test/e2e/support/node.js';
import { connection, outputLog, stageLaunches, submit, type Connection, type Session } from '../test/e2e/support/session.js';
import { baseUrlOf, logIn, serverSettings } from '../test/e2e/support/jupyter.js';
import { registryAvailable, startRegistry, unpackImage, type Registry } from '../test/e2e/support/registry.js';
import { goal, spread, type Goal, type Section } from './types.js';

/** Sessions per kind (cold, warm; each warm one followed by a bare job), before.sh runs, concurrent docker:// starts. */
const RUNS = Number(process.env.BENCH_TRIAL_RUNS ?? 5);
const BEFORE_RUNS = Number(process.env.BENCH_TRIAL_BEFORE ?? 12);
const CONCURRENT = 10;
const RESOURCES = 'cpu partition, 0 GPUs, 1 core, 1 GB';
export const IMAGE = '/opt/images/jupyterlab.sif';

/** The steps of before.sh, by the line that starts each (a line at column 0). */
const STEPS: Array<[string, RegExp]> = [
  ['source settings, messages, library', /^source \.\/settings\.sh/],
  ['session directories (chmod, mkdir)', /^chmod 700 \./],
  ['prepare_runtime', /^prepare_runtime\b/],
  ['prepare_image', /^prepare_image\b/],
  ['choose_jupyter', /^choose_jupyter\b/],
  ['prepare_package_dir', /^prepare_package_dir\b/],
  ['check_writable', /^check_writable\b/],
  ['write_kernels', /^write_kernels\b/],
  ['choose_port', /^choose_port\b/],
  ['create_passwd + write_jupyter_config', /^password=\$\(create_passwd/],
  ['save_launch', /^save_launch\b/],
  ['write_session_facts', /^write_session_facts\b/],
];

type Staged = { launch: LaunchResult; nodeRoot: string };
type Times = Record<string, number>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const s2 = (ms: number) => (ms / 1000).toFixed(2);
const fmt = (values: number[]) => {
  if (!values.length) return '–';
  const { median, min, max } = spread(values);
  return `${s2(median)} (${s2(min)}–${s2(max)})`;
};
const median = (values: number[]) => (values.length ? spread(values).median : NaN);
const round = (n: number) => Math.round(n * 10) / 10;

/** A printf format of messages.sh as a pattern for its lines. */
const messagePattern = (format: string) =>
  new RegExp(`^${format.split(/%s|%d/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'm');
const countLines = (log: string, format: string) => log.split('\n').filter((line) => messagePattern(format).test(line)).length;

/** The job's own marks: NAME SECONDS lines (first of each name), in ms. */
async function readMarks(path: string): Promise<Times> {
  const marks: Times = {};
  const text = existsSync(path) ? await readFile(path, 'utf8') : '';
  for (const line of text.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name && value && !(name in marks)) marks[name] = Number(value.replace(',', '.')) * 1000;
  }
  return marks;
}

/** When JupyterLab wrote its server file (it does once it listens), from its mtime. */
async function serverFileTime(runtimeDir: string): Promise<number | null> {
  const files = existsSync(runtimeDir) ? (await readdir(runtimeDir)).filter((f) => /^jpserver-\d+\.json$/.test(f)) : [];
  if (!files.length) return null;
  const times = await Promise.all(files.map(async (f) => (await stat(join(runtimeDir, f))).mtimeMs));
  return Math.min(...times);
}

/** Start a python3 kernel with the official client, run one line, and return when its reply came. */
async function firstKernelReply(settings: ServerConnection.ISettings): Promise<number> {
  const manager = new KernelManager({ serverSettings: settings });
  try {
    await manager.ready;
    const kernel = await manager.startNew({ name: 'python3' });
    try {
      const future = kernel.requestExecute({ code: 'print(1 + 1)' });
      await future.done;
      return Date.now();
    } finally {
      await kernel.shutdown().catch(() => undefined);
    }
  } finally {
    manager.dispose();
  }
}

/** How a bare JupyterLab job lets people in: bash lines run before its configuration is written, and
 * the configuration's lines (inside an unquoted here-document: $host, $port and the setup's variables
 * expand). By default a token, as a bare launcher's link carries. */
export interface BareAuth { setup: string[]; config: string[] }
export const TOKEN_AUTH: BareAuth = {
  setup: ["token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \\n')"],
  config: ['c.IdentityProvider.token = "$token"'],
};

/**
 * A bare launcher's job script, run from DIR (a directory in the node): its first line, a free port on
 * the host's address, a 0600 configuration file (what logs in: AUTH, not argv), then exec JupyterLab in
 * the same image. It writes DIR/phases (job_start, container_start), DIR/config.py, DIR/runtime.
 */
export function bareJobScript(dir: string, auth: BareAuth = TOKEN_AUTH): string {
  return [
    '#!/bin/bash',
    `printf 'job_start %s\\n' "$EPOCHREALTIME" >>'${dir}/phases'`,
    `cd '${dir}' || exit 1`,
    'host=$(hostname)',
    `port=$(python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$host") || exit 1`,
    'umask 077',
    ...auth.setup,
    'cat >config.py <<EOF',
    'c.ServerApp.ip = "$host"',
    'c.ServerApp.port = $port',
    'c.ServerApp.port_retries = 0',
    'c.ServerApp.base_url = "/node/$host/$port/"',
    'c.ServerApp.open_browser = False',
    ...auth.config,
    'EOF',
    `export JUPYTER_RUNTIME_DIR='${dir}/runtime'`,
    "printf 'container_start %s\\n' \"$EPOCHREALTIME\" >>phases",
    `exec apptainer exec ${IMAGE} python3 -m jupyterlab --config='${dir}/config.py'`,
    '',
  ].join('\n');
}

/** Where a bare job's JupyterLab listens, from the config.py its script wrote. */
export function bareAddress(config: string): { host: string; port: number } {
  return { host: /ip = "([^"]+)"/.exec(config)![1]!, port: Number(/port = (\d+)/.exec(config)![1]) };
}

export async function benchSession(): Promise<Section[]> {
  const status = await nodeStatus();
  if (!status) throw new Error(NODE_NOT_RUNNING);
  const node = new TestNode(status);
  const home = status.home;
  const hostHome = node.hostPath(home);
  const queued = await node.userJobs();
  if (queued.length) throw new Error(`the test node is busy (jobs ${queued.join(', ')} of ${status.user}); run the bench holding flock /tmp/ood-node.lock`);

  const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-bench-'));
  const appDir = join(work, 'app', 'jupyter-apptainer');
  await buildApp(join(repoRoot, 'test/e2e/presets'), appDir);
  const form = (overrides: Record<string, string> = {}) => ({
    slurm_partition: 'cpu', container: 'jupyterlab', num_gpus: '0', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
    working_dir: '', extra_binds: '', ...overrides,
  });

  // Every job and directory this bench makes, so that all of it goes however it ends.
  const jobs = new Set<string>();
  const dirs: string[] = [];
  const track = (s: Staged[]) => { dirs.push(...s.map((x) => x.nodeRoot)); return s; };
  const start = async (staged: Staged): Promise<Session> => {
    const session = await submit(node, staged);
    jobs.add(session.jobId);
    return session;
  };
  const sbatch = async (args: string[], script: string) => {
    const id = await node.sbatch(args, script);
    jobs.add(id);
    return id;
  };
  /** scancel, then wait until Slurm forgot the job and no process names its directory. */
  const stop = async (jobId: string, dir: string) => {
    await node.scancel(jobId);
    for (let i = 0; i < 240 && (await node.jobState(jobId)) !== ''; i++) await sleep(250);
    for (let i = 0; i < 120 && (await node.userProcesses()).some((p) => p.includes(dir)); i++) await sleep(250);
    jobs.delete(jobId);
  };

  let registry: Registry | null = null;
  try {
    const startSection = await sessionStart();
    const beforeSection = await beforeSteps();
    const docker = await dockerImages();
    return [startSection.section, beforeSection, networkSection(startSection.warmLogs, startSection.sifTrace, docker), docker.section];
  } finally {
    for (const id of jobs) await node.scancel(id);
    await (registry as Registry | null)?.stop().catch(() => undefined);
    for (const dir of dirs) await rm(node.hostPath(dir), { recursive: true, force: true });
    await rm(join(hostHome, 'bench-bare'), { recursive: true, force: true });
    await rm(join(hostHome, 'bench-before'), { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }

  // -------------------------------------------------------------------------------------------
  // 1. Session start: ours cold and warm, a bare JupyterLab job after each warm one.
  // -------------------------------------------------------------------------------------------

  /** Remove what a first session of the image finds missing: the probe and environment caches,
   * and the image's package directory if it holds nothing (a researcher's installed packages stay). */
  async function coldCaches(): Promise<string[]> {
    const notes: string[] = [];
    for (const dir of ['probes', 'environments']) await rm(join(hostHome, '.cache/ood-jupyter', dir), { recursive: true, force: true });
    const packages = join(hostHome, '.local/share/ood-jupyter/packages');
    for (const name of existsSync(packages) ? await readdir(packages) : []) {
      if (!name.startsWith('jupyterlab-py')) continue;
      await execa('find', [join(packages, name), '-depth', '-type', 'd', '-empty', '-delete'], { reject: false });
      if (existsSync(join(packages, name))) notes.push(`${name} kept: it holds files`);
    }
    return notes;
  }

  /** Wait for FILE-ish readiness by polling the host's view of the node (cheap: no process in the node). */
  async function until<T>(what: string, probe: () => Promise<T | null>, jobId: string, dir: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let checked = Date.now();
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() - checked > 1000) {
        checked = Date.now();
        if ((await node.jobState(jobId)) === '') {
          const value = await probe();
          if (value) return value;
          const log = existsSync(join(node.hostPath(dir), 'output.log')) ? await readFile(join(node.hostPath(dir), 'output.log'), 'utf8') : '';
          throw new Error(`job ${jobId} ended before ${what}:\n${log.split('\n').slice(-15).join('\n')}`);
        }
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (job ${jobId})`);
      await sleep(20);
    }
  }

  /** sbatch → R, polled as the suite polls it (squeue every 100 ms). */
  async function slurmRunning(jobId: string, ready: () => boolean): Promise<number | null> {
    for (let i = 0; i < 600; i++) {
      const state = await node.jobState(jobId);
      if (state === 'R') return Date.now();
      if (state === '' || ready()) return null;
      await sleep(100);
    }
    return null;
  }

  async function oursOnce(staged: Staged, kind: 'cold' | 'warm') {
    const notes = kind === 'cold' ? await coldCaches() : [];
    const session = await start(staged);
    const connFile = join(session.hostRoot, 'connection.yml');
    const running = await slurmRunning(session.jobId, () => existsSync(connFile));
    const conn = await until('connection.yml', () => connection(session), session.jobId, session.nodeRoot, 180_000);
    const login = await logIn(conn);
    if (login.status !== 302) throw new Error(`logging in to job ${session.jobId} answered ${login.status}`);
    const replied = await firstKernelReply(serverSettings(login));
    const marks = await readMarks(join(session.hostRoot, 'jupyter/phases'));
    const listening = await serverFileTime(join(session.hostRoot, 'jupyter/runtime'));
    const written = (await stat(connFile)).mtimeMs;
    const log = await outputLog(session);
    await stop(session.jobId, session.nodeRoot);
    const t0 = session.submittedAt;
    const rel = (v: number | null | undefined) => (v === null || v === undefined ? NaN : round(v - t0));
    const times: Times = {
      slurm_running: rel(running), job_start: rel(marks.before_start), before_done: rel(marks.before_done),
      container_start: rel(marks.container_start), listening: rel(listening), after_saw_listening: rel(marks.listening),
      connection_yml: rel(written), kernel_reply: rel(replied),
    };
    return { kind, jobId: session.jobId, submittedAt: t0, ms: times, notes, log };
  }

  async function bareOnce(resources: Staged) {
    const dir = `${home}/bench-bare/${randomUUID()}`;
    const hostDir = node.hostPath(dir);
    await mkdir(hostDir, { recursive: true });
    await node.chownToUser(`${home}/bench-bare`);
    const script = bareJobScript(dir);
    const args = sbatchArgs(resources.launch.submit!, { stagedRoot: dir, jobName: 'bench/bare-jupyterlab' });
    const submittedAt = Date.now();
    const jobId = await sbatch(args, script);
    const runtime = join(hostDir, 'runtime');
    const running = await slurmRunning(jobId, () => existsSync(runtime));
    const listening = await until('the bare JupyterLab\'s server file', () => serverFileTime(runtime), jobId, dir, 180_000);
    const seen = Date.now();
    const config = await readFile(join(hostDir, 'config.py'), 'utf8');
    const conn: Connection = { ...bareAddress(config), password: '' };
    const token = /token = "([^"]+)"/.exec(config)![1]!;
    const base = baseUrlOf(conn);
    // What a bare launcher's link does: open JupyterLab with the token, then the same client.
    await (await fetch(`${base}lab?token=${token}`)).arrayBuffer();
    const replied = await firstKernelReply(ServerConnection.makeSettings({
      baseUrl: base, wsUrl: base.replace(/^http/, 'ws'), token, appendToken: true,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    }));
    const marks = await readMarks(join(hostDir, 'phases'));
    await stop(jobId, dir);
    const rel = (v: number | null | undefined) => (v === null || v === undefined ? NaN : round(v - submittedAt));
    return {
      kind: 'bare', jobId, submittedAt, seenMs: round(seen - submittedAt),
      ms: { slurm_running: rel(running), job_start: rel(marks.job_start), container_start: rel(marks.container_start),
        listening: rel(listening), connection_yml: rel(listening), kernel_reply: rel(replied) } as Times,
    };
  }

  async function sessionStart() {
    const staged = track(await stageLaunches(node, appDir, Array.from({ length: 2 * RUNS + 1 }, () => form())));
    const cold: Array<Awaited<ReturnType<typeof oursOnce>>> = [];
    for (let i = 0; i < RUNS; i++) cold.push(await oursOnce(staged[i]!, 'cold'));
    const warm: Array<Awaited<ReturnType<typeof oursOnce>>> = [];
    const bare: Array<Awaited<ReturnType<typeof bareOnce>>> = [];
    for (let i = 0; i < RUNS; i++) {
      warm.push(await oursOnce(staged[RUNS + i]!, 'warm'));
      bare.push(await bareOnce(staged[0]!));
    }
    const sifTrace = await traceWarmBefore(staged[2 * RUNS]!, 'jupyterlab.sif');

    const col = (runs: Array<{ ms: Times }>, key: string, from = 'submit') =>
      runs.map((r) => (from === 'submit' ? r.ms[key]! : r.ms[key]! - r.ms[from]!)).filter((v) => Number.isFinite(v));
    const phases: Array<[string, string, string | null]> = [
      ['sbatch → job running (squeue R, polled every 100 ms)', 'slurm_running', 'slurm_running'],
      ['→ job start (ours: before.sh top; bare: script line 1)', 'job_start', 'job_start'],
      ['→ before.sh done', 'before_done', null],
      ['→ container started (just before exec)', 'container_start', 'container_start'],
      ['→ JupyterLab listening (its server file)', 'listening', 'listening'],
      ['→ after.sh saw it listening', 'after_saw_listening', null],
      ['→ connection.yml written (bare: = listening)', 'connection_yml', 'connection_yml'],
      ['→ first kernel reply (client: log in, start kernel, run)', 'kernel_reply', 'kernel_reply'],
    ];
    const table: string[][] = [['From sbatch, s: median (min–max)', `ours cold (${RUNS})`, `ours warm (${RUNS})`, `bare (${RUNS})`]];
    for (const [label, key, bareKey] of phases) table.push([label, fmt(col(cold, key)), fmt(col(warm, key)), bareKey ? fmt(col(bare, bareKey)) : '–']);
    table.push(['job start → connection.yml', fmt(col(cold, 'connection_yml', 'job_start')), fmt(col(warm, 'connection_yml', 'job_start')), fmt(col(bare, 'connection_yml', 'job_start'))]);
    table.push(['job start → first kernel reply', fmt(col(cold, 'kernel_reply', 'job_start')), fmt(col(warm, 'kernel_reply', 'job_start')), fmt(col(bare, 'kernel_reply', 'job_start'))]);
    const ratio = (key: string, from = 'submit') => median(col(warm, key, from)) / median(col(bare, key, from));
    const ratios = {
      connectionFromSbatch: ratio('connection_yml'), kernelFromSbatch: ratio('kernel_reply'),
      connectionFromJobStart: ratio('connection_yml', 'job_start'), kernelFromJobStart: ratio('kernel_reply', 'job_start'),
    };
    table.push(['warm ours ÷ bare, to connection.yml (from sbatch; from job start)', '', `${ratios.connectionFromSbatch.toFixed(3)}; ${ratios.connectionFromJobStart.toFixed(3)}`, '']);
    table.push(['warm ours ÷ bare, to first kernel reply (from sbatch; from job start)', '', `${ratios.kernelFromSbatch.toFixed(3)}; ${ratios.kernelFromJobStart.toFixed(3)}`, '']);

    // Where ours spends what bare does not: the medians of the warm runs' phases.
    const gap = (a: string, b: string) => median(col(warm, b, a));
    const afterWait = gap('listening', 'after_saw_listening');
    const ymlWait = gap('after_saw_listening', 'connection_yml');
    const beforeMs = gap('job_start', 'before_done');
    const excess = median(col(warm, 'connection_yml')) - median(col(bare, 'connection_yml'));
    const why = `warm ours reaches connection.yml ${s2(excess)} s after bare: before.sh ${s2(beforeMs)} s, `
      + `JupyterLab listening → after.sh noticing ${s2(afterWait)} s (wait_for_jupyter looks for its server file every 50 ms, then one port_used), `
      + `after.sh → connection.yml ${s2(ymlWait)} s; listening itself comes ${s2(median(col(warm, 'listening')) - median(col(bare, 'listening')))} s later than bare's`;
    const goals: Goal[] = [
      goal('warm ours ÷ bare ≤ 1.05 to connection.yml (from sbatch)', Number(ratios.connectionFromSbatch.toFixed(3)), '×', '<=', 1.05, why),
      goal('warm ours ÷ bare ≤ 1.05 to the first kernel reply (from sbatch)', Number(ratios.kernelFromSbatch.toFixed(3)), '×', '<=', 1.05, why),
    ];
    const strip = (r: { log?: string }) => { const { log: _log, ...rest } = r; return rest; };
    return {
      section: {
        title: `Session start on the test node: ${IMAGE}, ${RESOURCES}; ours cold (probe and per-researcher caches removed; the OS page cache stays warm) and warm, a bare JupyterLab job after each warm one`,
        table, goals,
        data: { resources: RESOURCES, image: IMAGE, ratios, cold: cold.map(strip), warm: warm.map(strip), bare },
      } as Section,
      warmLogs: warm.map((w) => w.log),
      sifTrace,
    };
  }

  // -------------------------------------------------------------------------------------------
  // 2. before.sh alone, warm, step by step, in one Slurm job with the same resources.
  // -------------------------------------------------------------------------------------------

  /** before.sh with `bench_mark N` before each step's line, and OOD's job script up to sourcing it. */
  async function instrument(staged: Staged): Promise<{ wrapper: string; found: string[] }> {
    const root = node.hostPath(staged.nodeRoot);
    const lines = (await readFile(join(root, 'before.sh'), 'utf8')).split('\n');
    const found: string[] = [];
    const out = lines.flatMap((line) => {
      const i = STEPS.findIndex(([, re]) => re.test(line));
      if (i < 0) return [line];
      found.push(STEPS[i]![0]);
      return [`bench_mark ${i}`, line];
    });
    await writeFile(join(root, 'before.bench.sh'), out.join('\n'));
    const job = jobScript(staged.nodeRoot);
    const sourceLine = job.split('\n').find((l) => l.includes(`${staged.nodeRoot}/before.sh`));
    if (!sourceLine) throw new Error('OOD\'s job script has no before.sh line');
    const head = job.slice(0, job.indexOf(sourceLine));
    const wrapper = [
      head.replace(/^#!.*\n/, `#!/bin/bash\nbench_mark() { printf '%s %s\\n' "$1" "$EPOCHREALTIME" >>'${staged.nodeRoot}/bench-marks'; }\n`),
      'bench_mark start',
      `source '${staged.nodeRoot}/before.bench.sh'`,
      'bench_mark end',
      'exit 0',
      '',
    ].join('\n');
    await writeFile(join(root, 'bench-job.sh'), wrapper);
    return { wrapper: `${staged.nodeRoot}/bench-job.sh`, found };
  }

  async function beforeSteps(): Promise<Section> {
    const staged = track(await stageLaunches(node, appDir, Array.from({ length: BEFORE_RUNS }, () => form())));
    let found: string[] = [];
    for (const s of staged) found = (await instrument(s)).found;
    await node.chownToUser(`${home}/ondemand`);
    const dir = `${home}/bench-before`;
    await mkdir(node.hostPath(dir), { recursive: true });
    await node.chownToUser(dir);
    const script = ['#!/bin/bash', ...staged.map((s) => `bash '${s.nodeRoot}/bench-job.sh' >'${s.nodeRoot}/output.log' 2>&1`), ''].join('\n');
    const jobId = await sbatch(sbatchArgs(staged[0]!.launch.submit!, { stagedRoot: dir, jobName: 'bench/before.sh' }), script);
    const markFile = (s: Staged) => join(node.hostPath(s.nodeRoot), 'bench-marks');
    const done = async () => (await Promise.all(staged.map(async (s) => 'end' in (await readMarks(markFile(s)))))).every(Boolean);
    for (let i = 0; i < 240 && !(await done()) && (await node.jobState(jobId)) !== ''; i++) await sleep(250);
    await stop(jobId, dir);
    const runs = await Promise.all(staged.map(async (s) => ({ root: s.nodeRoot, marks: await readMarks(markFile(s)), log: await readFile(join(node.hostPath(s.nodeRoot), 'output.log'), 'utf8').catch(() => '') })));
    const complete = runs.filter((r) => 'end' in r.marks);
    const order = ['start', ...STEPS.map((_, i) => String(i)), 'end'].filter((k) => complete[0] && k in complete[0].marks);
    const perStep = order.slice(0, -1).map((key, i) => {
      const next = order[i + 1]!;
      const label = key === 'start' ? '(OOD\'s `source before.sh` to its first line)' : STEPS[Number(key)]![0];
      return { step: label, ms: complete.map((r) => r.marks[next]! - r.marks[key]!) };
    });
    const totals = complete.map((r) => r.marks.end! - r.marks.start!);
    const ms = (v: number[]) => { const x = spread(v); return [x.median.toFixed(1), `${x.min.toFixed(1)}–${x.max.toFixed(1)}`]; };
    const table = [['before.sh step (warm), ms', 'median', 'min–max'], ...perStep.map((p) => [p.step, ...ms(p.ms)])];
    if (complete.length) table.push(['before.sh, all of it', ...ms(totals)]);
    const missing = STEPS.map(([name]) => name).filter((name) => !found.includes(name));
    const total = complete.length ? spread(totals).median : NaN;
    const slowest = [...perStep].sort((a, b) => median(b.ms) - median(a.ms)).slice(0, 3).map((p) => `${p.step} ${median(p.ms).toFixed(0)} ms`).join(', ');
    return {
      title: `before.sh alone, warm: ${complete.length} of ${BEFORE_RUNS} runs in one Slurm job (${RESOURCES}), each in its own staged session directory under OOD's job script${missing.length ? `; steps not found in before.sh: ${missing.join(', ')}` : ''}`,
      table,
      goals: [goal('before.sh warm ≤ 100 ms median', Number(total.toFixed(1)), 'ms', '<=', 100,
        complete.length ? `the slowest steps: ${slowest}` : `no run completed:\n${runs[0]?.log ?? ''}`)],
      data: { runs: runs.map(({ root, marks }) => ({ root, marks })), steps: perStep, totalsMs: totals, missingSteps: missing, failedLogs: runs.filter((r) => !('end' in r.marks)).map((r) => r.log) },
    };
  }

  // -------------------------------------------------------------------------------------------
  // 3. What a warm start touches: connect() calls under strace (from the host: the node shares its pids).
  // -------------------------------------------------------------------------------------------

  interface Trace { available: boolean; exitCode: number; connects: Array<{ pid: number; program: string; call: string; family: string; address: string; port: number; probe: boolean }>; output: string }

  async function traceWarmBefore(staged: Staged, what: string): Promise<Trace> {
    const strace = await execa('strace', ['-V'], { reject: false });
    if (strace.exitCode !== 0) return { available: false, exitCode: -1, connects: [], output: 'strace is not installed on the host' };
    const { wrapper } = await instrument(staged);
    await node.chownToUser(`${home}/ondemand`);
    const pid = (await readFile('/run/ood-jupyter-node/holder.pid', 'utf8')).trim();
    const traceFile = join(work, `strace-${what.replace(/\W+/g, '-')}.txt`);
    // As the researcher, in the node, with exec.sh's environment (not a Slurm job's: no SLURM_* variables).
    const run = await execa('strace', ['-f', '-qq', '-s', '200', '-o', traceFile, '-e', 'trace=connect,sendto,sendmsg,sendmmsg,execve',
      'nsenter', '-t', pid, '-m', '--', '/usr/bin/env', '-i', 'PATH=/usr/local/bin:/usr/bin:/bin', `HOME=${home}`, `USER=${status!.user}`,
      `LOGNAME=${status!.user}`, 'SHELL=/bin/bash', 'LANG=C.UTF-8', '/usr/bin/setpriv', `--reuid=${status!.uid}`, `--regid=${status!.uid}`,
      '--init-groups', '--', '/bin/bash', wrapper], { reject: false, timeout: 120_000, all: true });
    const text = await readFile(traceFile, 'utf8');
    const programs = new Map<number, string>();
    const connects: Trace['connects'] = [];
    for (const line of text.split('\n')) {
      const m = /^(\d+)\s+(\w+)\((.*)$/.exec(line);
      if (!m) continue;
      const [pidText, call, rest] = [m[1]!, m[2]!, m[3]!];
      const p = Number(pidText);
      if (call === 'execve') {
        const argv = /^"[^"]*", \[(.*?)\]/.exec(rest)?.[1] ?? rest;
        if (!/= -1 /.test(rest)) programs.set(p, argv);
        continue;
      }
      const inet = /sa_family=(AF_INET6?), sin6?_port=htons\((\d+)\), (?:sin_addr=inet_addr\("([^"]+)"\)|sin6_flowinfo=[^,]*, inet_pton\(AF_INET6, "([^"]+)")/.exec(rest);
      if (!inet) continue;
      const program = programs.get(p) ?? '(a forked shell)';
      const address = inet[3] ?? inet[4] ?? '';
      // OOD's find_port: port_used's strategies (nc, lsof, bash's /dev/tcp, python -c socket…connect) on the node's own address.
      const probe = /socket\(\)\.connect\(|^"nc"|^"lsof"/.test(program) || (program === '(a forked shell)' && /^(127\.|::1$)/.test(address));
      connects.push({ pid: p, program: program.slice(0, 120), call, family: inet[1]!, address, port: Number(inet[2]), probe });
    }
    return { available: true, exitCode: run.exitCode ?? -1, connects, output: run.all?.slice(-2000) ?? '' };
  }

  function networkSection(warmLogs: string[], sif: Trace, docker: DockerResult): Section {
    const probeLines = warmLogs.reduce((n, log) => n + countLines(log, jobMessages.probed), 0);
    const pullLines = warmLogs.reduce((n, log) => n + countLines(log, jobMessages.pulling), 0);
    const network = (t: Trace) => t.connects.filter((c) => !c.probe);
    const probes = (t: Trace) => t.connects.filter((c) => c.probe);
    const describe = (t: Trace) => (t.available ? `${network(t).length} (${network(t).map((c) => `${c.program.split(',')[0]} → ${c.address}:${c.port}`).join('; ') || 'none'})` : 'not measured: no strace');
    const table = [
      ['Warm start', 'probe lines', 'pull lines', 'registry requests (its access log)', 'connect()/send to an address, strace (not OOD\'s port probe)', 'OOD find_port probes (node\'s own address)'],
      [`${IMAGE}, ${RUNS} sessions`, String(probeLines), String(pullLines), '–', `${describe(sif)} [before.sh run once as the researcher]`, sif.available ? String(probes(sif).length) : '–'],
    ];
    const goals: Goal[] = [];
    const sifMeasured = probeLines + pullLines + (sif.available ? network(sif).length : 0);
    goals.push(goal(`no network and no probe in a warm start: ${IMAGE} (probe + pull lines + connects)`, sif.available ? sifMeasured : NaN, '', '==', 0,
      sif.available ? `${probeLines} probe lines, ${pullLines} pull lines, ${network(sif).length} connects: ${describe(sif)}` : 'strace is not on the host: no connect() was counted'));
    if (docker.warm) {
      const w = docker.warm;
      table.push([`${docker.uri} (session 2)`, String(w.probeLines), String(w.pullLines), `${w.requests.length} (${w.requests.join('; ')})`,
        docker.trace ? `${describe(docker.trace)} [before.sh run once, traced]` : '–', docker.trace ? String(probes(docker.trace).length) : '–']);
      goals.push(goal('no network and no probe in a warm start: docker:// (probe + pull lines + registry requests)', w.probeLines + w.pullLines + w.requests.length, '', '==', 0,
        `by design the app asks the registry for the tag's digest at every docker:// start (registry_digest: ${w.requests.join('; ')}), so that a moved tag is pulled again; it pulls nothing and probes nothing`));
    } else {
      goals.push(goal('no network and no probe in a warm start: docker:// (probe + pull lines + registry requests)', NaN, '', '==', 0, `not measured: ${docker.skipped}`));
    }
    return {
      title: 'No network and no probe in a warm start: output.log lines, connect() calls under strace (host strace through nsenter), the registry\'s access log',
      table, goals,
      data: { sif: { probeLines, pullLines, trace: sif }, docker: { uri: docker.uri, warm: docker.warm, trace: docker.trace } },
    };
  }

  // -------------------------------------------------------------------------------------------
  // 4. docker:// from the suite's registry: pulled once, reused, and one pull for ten at once.
  // -------------------------------------------------------------------------------------------

  interface DockerResult {
    section: Section;
    uri: string;
    skipped?: string;
    warm?: { probeLines: number; pullLines: number; requests: string[] };
    trace?: Trace;
  }

  async function dockerImages(): Promise<DockerResult> {
    const title = 'docker:// images from the suite\'s registry (python3-only pushed with skopeo, JupyterLab from the site overlay; cpu partition): first session pulls, second reuses, then ten at once from an empty cache';
    if (!registryAvailable()) {
      const why = 'docker-registry, umoci or skopeo is not installed on the host';
      return { uri: '', skipped: why, section: { title, table: [['not measured'], [why]], goals: [goal(`one pull for ${CONCURRENT} concurrent cold starts`, NaN, 'pulls', '==', 1, why)], data: { skipped: why } } };
    }
    const presets = join(work, 'presets-overlay');
    await execa('cp', ['-a', join(repoRoot, 'test/e2e/presets'), presets]);
    await writeFile(join(presets, 'site.yml'), `${await readFile(join(presets, 'site.yml'), 'utf8')}python:\n  overlays: /opt/ood-jupyter/overlays\n`);
    const overlayApp = join(work, 'overlay', 'jupyter-apptainer');
    await buildApp(presets, overlayApp);

    const began = Date.now();
    registry = await startRegistry(node);
    const rootfs = join(work, 'rootfs');
    await mkdir(rootfs);
    await unpackImage(node, '/opt/images/python3-only.sif', rootfs);
    const digest = await registry.push(rootfs, 'lab/python3:latest');
    await rm(rootfs, { recursive: true, force: true });
    const setupMs = Date.now() - began;
    const uri = `docker://${registry.address}/lab/python3:latest`;
    const own = form({ container: 'custom', custom_image: uri });
    const cache = join(hostHome, '.cache/ood-jupyter/images');
    await rm(cache, { recursive: true, force: true });
    const requestsOf = (log: string) => log.split('\n').map((l) => /"(GET|HEAD|POST|PUT|PATCH|DELETE) (\/v2\/[^ ?"]*)/.exec(l)).filter(Boolean).map((m) => `${m![1]} ${m![2]}`);
    const blobGets = (requests: string[]) => {
      const per = new Map<string, number>();
      for (const r of requests) { const d = /^GET \/v2\/lab\/python3\/blobs\/(sha256:[0-9a-f]+)/.exec(r)?.[1]; if (d) per.set(d, (per.get(d) ?? 0) + 1); }
      return per;
    };

    /** One session to connection.yml: its output.log's pull and probe lines, and the registry's requests meanwhile. */
    const one = async (staged: Staged) => {
      const before = (await registry!.log()).length;
      const session = await start(staged);
      await until('connection.yml', () => connection(session), session.jobId, session.nodeRoot, 300_000);
      const seconds = (Date.now() - session.submittedAt) / 1000;
      const log = await outputLog(session);
      await stop(session.jobId, session.nodeRoot);
      const requests = requestsOf((await registry!.log()).slice(before));
      return { jobId: session.jobId, seconds, probeLines: countLines(log, jobMessages.probed), pullLines: countLines(log, jobMessages.pulling), requests };
    };
    const staged = track(await stageLaunches(node, overlayApp, Array.from({ length: 3 + CONCURRENT }, () => own)));
    const first = await one(staged[0]!);
    const second = await one(staged[1]!);
    const beforeTrace = (await registry.log()).length;
    const trace = await traceWarmBefore(staged[2]!, 'docker');
    const traceRequests = requestsOf((await registry.log()).slice(beforeTrace));

    // Ten at once from an empty cache.
    await rm(cache, { recursive: true, force: true });
    const logStart = (await registry.log()).length;
    const ten = staged.slice(3);
    await node.chownToUser(`${home}/ondemand`);
    const sessions = await Promise.all(ten.map((s) => submit(node, s).then((session) => { jobs.add(session.jobId); return session; })));
    const ready = await Promise.all(sessions.map(async (s) => {
      const conn = await until('connection.yml', () => connection(s), s.jobId, s.nodeRoot, 480_000).then(() => Date.now(), (e: Error) => e);
      return conn instanceof Error ? { error: conn.message } : { seconds: (conn - s.submittedAt) / 1000 };
    }));
    const logs = await Promise.all(sessions.map((s) => outputLog(s)));
    await Promise.all(sessions.map((s) => stop(s.jobId, s.nodeRoot)));
    const tenRequests = requestsOf((await registry.log()).slice(logStart));
    const perBlob = blobGets(tenRequests);
    const pulls = logs.reduce((n, l) => n + countLines(l, jobMessages.pulling), 0);
    const waits = logs.reduce((n, l) => n + countLines(l, jobMessages.pullWaiting), 0);
    const times = ready.filter((r): r is { seconds: number } => 'seconds' in r).map((r) => r.seconds * 1000);
    const failures = ready.filter((r) => 'error' in r).length;
    const maxGets = perBlob.size ? Math.max(...perBlob.values()) : 0;
    const firstBlobs = blobGets(first.requests);

    const table = [
      ['docker:// session', 'pulling lines', 'probe lines', 'registry requests', 'sbatch → connection.yml, s'],
      ['first (empty cache)', String(first.pullLines), String(first.probeLines), `${first.requests.length} (blob GETs ${[...firstBlobs.values()].reduce((a, b) => a + b, 0)})`, first.seconds.toFixed(2)],
      ['second (cached)', String(second.pullLines), String(second.probeLines), `${second.requests.length} (${second.requests.join('; ')})`, second.seconds.toFixed(2)],
      [`${CONCURRENT} at once (empty cache)`, `${pulls} (+${waits} "waiting" lines)`, '–', `${tenRequests.length} (${perBlob.size} blobs, each GET at most ${maxGets}×)`,
        `${fmt(times)} median (min–max)${failures ? `; ${failures} failed` : ''}`],
    ];
    const goals = [
      goal(`one pull for ${CONCURRENT} concurrent cold starts (pulling lines in the ${CONCURRENT} output.logs)`, pulls, 'pulls', '==', 1,
        `${pulls} pulling lines, ${waits} waiting lines, ${failures} sessions failed`),
      goal(`one pull for ${CONCURRENT} concurrent cold starts (the registry's GETs of each blob, most)`, maxGets, 'GETs', '==', 1,
        `the registry served ${JSON.stringify([...perBlob])}`),
    ];
    return {
      uri, warm: { probeLines: second.probeLines, pullLines: second.pullLines, requests: second.requests }, trace,
      section: {
        title, table, goals,
        data: { uri, digest, setupMs, first, second, traceRequests, concurrent: { ready, pulls, waits, requests: tenRequests, blobGets: [...perBlob] } },
      },
    };
  }
}
