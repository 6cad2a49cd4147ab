// The generator part of `npm run bench`: the CLI on preset sets of 1, 10, 100 and 1000 partitions ×
// 1, 10 and 100 containers, written into temporary directories as staff would write them. For each:
// `validate` and `build` wall time (the whole process, as staff run it) and peak memory (GNU time's
// maximum resident set), the sizes of form.yml, submit.yml.erb and form.js, and, for the largest
// set, native Ruby's time to parse form.yml and render submit.yml.erb as the dashboard does at each
// Launch (bench/render-time.rb). Growth is checked against a + b·partitions + c·containers.
//
// Two shapes: "all", every partition offering every container (the default, `containers: all`),
// and, for the largest count, "five each", every partition listing five containers: there OOD's
// form needs one data-option-for-… line per container a partition does not offer, so form.yml grows
// with those pairs, not with partitions + containers; it is reported beside the others.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, repoRoot } from '../test/support/presets.js';
import { goal, spread, type Goal, type Section } from './types.js';

const PARTITIONS = [1, 10, 100, 1000];
const CONTAINERS = [1, 10, 100];
const RUNS = Number(process.env.BENCH_GENERATOR_RUNS ?? 5);
const RENDER_RUNS = 50;
const TIME = '/usr/bin/time';

type Shape = 'all' | 'five each';

interface Cell {
  partitions: number; containers: number; shape: Shape;
  /** Partition × container pairs the form hides (one directive line each). */
  hiddenPairs: number;
  validateMs: number[]; buildMs: number[]; validateKiB: number[]; buildKiB: number[];
  bytes: { formYml: number; submitYmlErb: number; formJs: number };
}

/** A preset set as staff would keep it: site.yml naming the partitions, one file per partition and container. */
async function writePresets(dir: string, partitions: number, containers: number, shape: Shape): Promise<number> {
  await mkdir(join(dir, 'partitions'), { recursive: true });
  await mkdir(join(dir, 'containers'), { recursive: true });
  const p = (i: number) => `p${String(i).padStart(4, '0')}`;
  const c = (j: number) => `c${String(j).padStart(3, '0')}`;
  await writeFile(join(dir, 'site.yml'), [
    'cluster: bench',
    'partitions:', ...Array.from({ length: partitions }, (_, i) => `  - ${p(i)}`),
    'runtime:', '  command: apptainer', '  setup:', '    - module load apptainer',
    'binds:', '  - /scratch', '  - /project',
    'portal:', '  origins:', '    - https://ondemand.example.edu',
    'customImages:', '  allow: true', '  pathPrefixes:', '    - /project/containers', '  registries:', '    - docker',
    'images:', '  cacheDir: /project/containers/cache',
    'python:', '  overlays: /project/containers/jupyter-overlays',
    'accounts: auto', '',
  ].join('\n'));
  let hidden = 0;
  await Promise.all(Array.from({ length: partitions }, (_, i) => {
    const gpu = i % 2 === 0;
    const offered = shape === 'all' || containers <= 5 ? null : Array.from({ length: 5 }, (_, k) => c((i + k) % containers));
    hidden += offered ? containers - offered.length : 0;
    return writeFile(join(dir, 'partitions', `${p(i)}.yml`), [
      `label: Partition ${i} (${gpu ? 'A100' : 'CPU'})`,
      `description: Bench partition ${i}.`,
      ...(gpu ? ['gpus:', '  type: a100', '  max: 4', '  default: 1'] : []),
      'memoryGb:', '  default: 16', `  max: ${gpu ? 480 : 250}`,
      'hours:', '  default: 2', `  max: ${gpu ? 8 : 24}`,
      'cores:', '  default: 4', `  max: ${gpu ? 64 : 32}`, ...(gpu ? ['  maxPerGpu: 16'] : []),
      ...(gpu ? ['sbatchArgs:', '  - --qos=interactive'] : []),
      ...(offered ? ['containers:', ...offered.map((name) => `  - ${name}`), `defaultContainer: ${offered[0]}`] : [`defaultContainer: ${c(0)}`]),
      ...(gpu ? ['idleMinutes: 60'] : []),
      '',
    ].join('\n'));
  }));
  await Promise.all(Array.from({ length: containers }, (_, j) => writeFile(join(dir, 'containers', `${c(j)}.yml`), [
    `label: Container ${j}`,
    `image: /project/containers/${c(j)}-jupyterlab.sif`,
    `description: Bench container ${j}, with JupyterLab.`,
    'jupyterlab: true',
    '',
  ].join('\n'))));
  return hidden;
}

/** One CLI run under GNU time: wall milliseconds (the client's clock) and peak resident KiB. */
async function timed(args: string[]): Promise<{ ms: number; kib: number }> {
  const started = process.hrtime.bigint();
  const result = await execa(TIME, ['-f', 'maxrss %M', process.execPath, cliPath, ...args], { reject: false, cwd: repoRoot });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.exitCode !== 0) throw new Error(`ood-jupyter ${args.join(' ')} failed (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`.slice(0, 3000));
  const kib = Number(/maxrss (\d+)/.exec(result.stderr)?.[1] ?? NaN);
  return { ms, kib };
}

/** Least squares of y = a + b·P + c·C over the cells; the largest |residual| ÷ y. */
function linearFit(cells: Cell[], y: (c: Cell) => number) {
  const rows = cells.map((c) => [1, c.partitions, c.containers]);
  const ys = cells.map(y);
  // Normal equations XᵀX β = Xᵀy, 3 × 3, solved by Cramer's rule.
  const m = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((s, r) => s + r[i]! * r[j]!, 0)));
  const v = [0, 1, 2].map((i) => rows.reduce((s, r, k) => s + r[i]! * ys[k]!, 0));
  const det = (a: number[][]) => a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!)
    - a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!) + a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!);
  const d = det(m);
  const beta = [0, 1, 2].map((k) => det(m.map((row, i) => row.map((x, j) => (j === k ? v[i]! : x)))) / d);
  const residuals = rows.map((r, k) => Math.abs(beta[0]! + beta[1]! * r[1]! + beta[2]! * r[2]! - ys[k]!) / ys[k]!);
  return { perPartition: beta[1]!, perContainer: beta[2]!, base: beta[0]!, worst: Math.max(...residuals) };
}

async function measure(work: string, partitions: number, containers: number, shape: Shape): Promise<Cell> {
  const dir = join(work, `${shape === 'all' ? 'all' : 'five'}-${partitions}x${containers}`);
  const presets = join(dir, 'presets');
  const out = join(dir, 'app');
  const hiddenPairs = await writePresets(presets, partitions, containers, shape);
  const cell: Cell = { partitions, containers, shape, hiddenPairs, validateMs: [], buildMs: [], validateKiB: [], buildKiB: [], bytes: { formYml: 0, submitYmlErb: 0, formJs: 0 } };
  for (let i = 0; i < RUNS; i++) {
    const v = await timed(['validate', '--presets', presets]);
    cell.validateMs.push(v.ms); cell.validateKiB.push(v.kib);
    const b = await timed(['build', '--presets', presets, '--out', out]);
    cell.buildMs.push(b.ms); cell.buildKiB.push(b.kib);
  }
  const size = async (f: string) => (await stat(join(out, f))).size;
  cell.bytes = { formYml: await size('form.yml'), submitYmlErb: await size('submit.yml.erb'), formJs: await size('form.js') };
  return cell;
}

/** Native Ruby's times for the dashboard's work at a Launch on the app in appDir. */
async function rubyRender(appDir: string, fields: Record<string, string>) {
  const ruby = process.env.OOD_JUPYTER_RUBY?.trim() || 'ruby';
  const version = await execa(ruby, ['--version'], { reject: false });
  if (version.exitCode !== 0) return { ruby: null, why: `no native Ruby (${ruby}) on this machine` } as const;
  const result = await execa(ruby, [join(repoRoot, 'bench/render-time.rb'), appDir, String(RENDER_RUNS), JSON.stringify(fields)], { reject: false });
  if (result.exitCode !== 0) throw new Error(`bench/render-time.rb failed:\n${result.stderr.slice(0, 3000)}`);
  const parsed = JSON.parse(result.stdout) as { formYmlMs: number[]; submitMs: number[]; script: unknown };
  return { ruby: version.stdout.trim(), ...parsed } as const;
}

export async function benchGenerator(): Promise<Section[]> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run npm run bench (it compiles first)`);
  if (!existsSync(TIME)) throw new Error(`${TIME} (GNU time, Debian's "time" package) is missing: it measures peak memory`);
  const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-bench-generator-'));
  try {
    const cells: Cell[] = [];
    for (const p of PARTITIONS) for (const c of CONTAINERS) cells.push(await measure(work, p, c, 'all'));
    const five = await measure(work, 1000, 100, 'five each');

    const largest = join(work, 'all-1000x100', 'app');
    const fields = {
      cluster: 'bench', slurm_partition: 'p0999', container: 'c099', custom_image: '', num_gpus: '0', num_cores: '4',
      memory_gb: '16', bc_num_hours: '2', auto_accounts: 'lab', working_dir: '', extra_binds: '',
    };
    const render = await rubyRender(largest, fields);
    const renderFive = await rubyRender(join(work, 'five-1000x100', 'app'), { ...fields, container: 'c003' });

    const med = (v: number[]) => spread(v).median;
    const kb = (n: number) => (n / 1024).toFixed(1);
    const table: string[][] = [['partitions × containers', 'validate, ms', 'build, ms', 'build peak RSS, MiB', 'form.yml, KiB', 'submit.yml.erb, KiB', 'form.js, KiB']];
    for (const cell of [...cells, five]) {
      table.push([
        `${cell.partitions} × ${cell.containers}${cell.shape === 'all' ? '' : ` (five each: ${cell.hiddenPairs} hidden pairs)`}`,
        med(cell.validateMs).toFixed(0), med(cell.buildMs).toFixed(0), (med(cell.buildKiB) / 1024).toFixed(0),
        kb(cell.bytes.formYml), kb(cell.bytes.submitYmlErb), kb(cell.bytes.formJs),
      ]);
    }
    const noop = cells.find((c) => c.partitions === 1 && c.containers === 1)!;
    const fits = {
      formYml: linearFit(cells, (c) => c.bytes.formYml),
      submitYmlErb: linearFit(cells, (c) => c.bytes.submitYmlErb),
      formJs: linearFit(cells, (c) => c.bytes.formJs),
      buildMs: linearFit(cells, (c) => med(c.buildMs)),
      buildKiB: linearFit(cells, (c) => med(c.buildKiB)),
    };
    const fitRow = (label: string, f: ReturnType<typeof linearFit>, unit: string, scale = 1) =>
      [label, `${(f.base / scale).toFixed(1)} ${unit} + ${(f.perPartition / scale).toFixed(3)}·P + ${(f.perContainer / scale).toFixed(3)}·C`, `worst cell off the line by ${(f.worst * 100).toFixed(1)} %`];
    const fitTable = [['fit over the 12 "all" cells', 'a + b·partitions + c·containers', 'linearity'],
      fitRow('form.yml', fits.formYml, 'KiB', 1024), fitRow('submit.yml.erb', fits.submitYmlErb, 'KiB', 1024), fitRow('form.js', fits.formJs, 'KiB', 1024),
      fitRow('build wall time', fits.buildMs, 'ms'), fitRow('build peak RSS', fits.buildKiB, 'MiB', 1024)];
    const renderTable = [[`the largest set, native Ruby, ${RENDER_RUNS} Launches after one warm-up`, 'median, ms', 'min–max, ms']];
    const renderRow = (label: string, v: number[]) => { const s = spread(v); return [label, s.median.toFixed(2), `${s.min.toFixed(2)}–${s.max.toFixed(2)}`]; };
    if (render.ruby && renderFive.ruby) {
      renderTable.push(renderRow('1000 × 100: form.yml parsed', render.formYmlMs), renderRow('1000 × 100: submit.yml.erb rendered and parsed', render.submitMs),
        renderRow('1000 × 100 five each: form.yml parsed', renderFive.formYmlMs), renderRow('1000 × 100 five each: submit.yml.erb rendered and parsed', renderFive.submitMs));
    } else {
      renderTable.push(['not measured', render.ruby ? '' : (render.why ?? ''), '']);
    }

    const big = cells.find((c) => c.partitions === 100 && c.containers === 100)!;
    const sizeWorst = Math.max(fits.formYml.worst, fits.submitYmlErb.worst, fits.formJs.worst);
    const goals: Goal[] = [
      goal('a 100 × 100 build in < 1 s (ood-jupyter build, the whole process)', Math.round(med(big.buildMs)), 'ms', '<', 1000,
        `of it, ${Math.round(med(noop.buildMs))} ms is the 1 × 1 build (Node starting and loading the CLI)`),
      goal('submit.yml.erb rendered in < 50 ms (1000 × 100, native Ruby, median)', render.ruby ? Number(spread(render.submitMs).median.toFixed(2)) : NaN, 'ms', '<', 50,
        render.ruby ? 'ERB compiles the whole file at every Launch and JSON.parse reads the embedded presets' : render.why),
      goal('growth linear in partitions + containers (form.yml, submit.yml.erb, form.js sizes: worst cell off the fitted line)', Number((sizeWorst * 100).toFixed(1)), '%', '<=', 5,
        'a file grows with partitions × containers'),
    ];
    return [
      {
        title: `The generator: ${PARTITIONS.join(', ')} partitions × ${CONTAINERS.join(', ')} containers (every partition offering every container), and 1000 × 100 with five containers per partition; medians of ${RUNS} runs of the CLI`,
        table, goals,
        data: { runs: RUNS, cells: [...cells, five], fits },
      },
      { title: 'Growth: sizes, time and memory fitted to a + b·partitions + c·containers', table: fitTable, goals: [], data: fits },
      { title: 'What the dashboard does at each Launch, on the largest set: form.yml parsed, submit.yml.erb rendered (ERB) and parsed (YAML)', table: renderTable, goals: [], data: { render, renderFive } },
    ];
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
