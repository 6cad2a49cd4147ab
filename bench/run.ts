// `npm run bench`: the figures a center asks for, measured the same way every time. Each part hands
// back its tables, its goals (PASS/FAIL with the measured figure) and its raw figures; this prints
// them and writes bench/results.json with the machine they were taken on.
//   npm run bench                     every part (the node parts need the test node running)
//   npm run bench -- generator        only the parts named (generator, session, connect)
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Goal, Section } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Part { name: string; what: string; run: () => Promise<Section[]> }

/** The parts, in the order they run: one table drives the command line and the output. */
const parts: Part[] = [
  { name: 'generator', what: 'the generator at 1 to 1000 partitions × 1 to 100 containers', run: async () => (await import('./generator.js')).benchGenerator() },
  { name: 'session', what: 'session start on the test node, next to bare JupyterLab; before.sh; docker:// pulls', run: async () => (await import('./session.js')).benchSession() },
  { name: 'connect', what: 'Connect in Chromium through the portal to an idle notebook kernel, next to bare JupyterLab; loopback and an emulated link', run: async () => (await import('./connect.js')).benchConnect() },
];

async function firstLine(command: string, args: string[]): Promise<string> {
  const result = await execa(command, args, { reject: false });
  return result.exitCode === 0 ? result.stdout.split('\n')[0]!.trim() : 'not found';
}

/** The machine the figures were taken on. */
async function machine() {
  const { inNode, nodeStatus } = await import('../test/e2e/support/node.js');
  const node = await nodeStatus();
  const inside = async (args: string[]) => (node ? (await inNode(args)).stdout.split('\n')[0]!.trim() : 'test node not running');
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: existsSync('/etc/debian_version') ? `Debian ${(await readFile('/etc/debian_version', 'utf8')).trim()}` : os.type(),
    kernel: os.release(),
    node: process.version,
    ruby: await firstLine(process.env.OOD_JUPYTER_RUBY ?? 'ruby', ['--version']),
    apptainer: await inside(['apptainer', '--version']),
    slurm: await inside(['sinfo', '--version']),
  };
}

/** Columns padded to their widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const figure = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 3 : 1));

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !parts.some((p) => p.name === w));
if (unknown.length) {
  console.error(`ood-jupyter bench: no part named ${unknown.join(', ')} (parts: ${parts.map((p) => p.name).join(', ')})`);
  process.exit(2);
}

const facts = await machine();
console.log(`Machine: ${facts.cpu}, ${facts.cpus} CPUs, ${facts.memoryGiB} GiB; ${facts.os}, Linux ${facts.kernel}; Node ${facts.node}; ${facts.ruby}; ${facts.apptainer}; ${facts.slurm}\n`);
const sections: Section[] = [];
const sectionPart = new Map<Section, string>();
const skipped: string[] = [];
for (const part of parts.filter((p) => !wanted.length || wanted.includes(p.name))) {
  console.log(`== ${part.name}: ${part.what}`);
  const started = Date.now();
  try {
    for (const section of await part.run()) {
      console.log(`\n${section.title}\n${table(section.table)}\n`);
      sections.push(section);
      sectionPart.set(section, part.name);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && process.env.BENCH_DEBUG) console.log(error.stack, (error as { cause?: unknown }).cause);
    console.log(`${part.name} could not run: ${message}\n`);
    skipped.push(`${part.name}: ${message.split('\n')[0]}`);
  }
  console.log(`(${part.name} took ${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
}

const goals: Goal[] = sections.flatMap((s) => s.goals);
console.log(table([['Goal', 'Measured', 'Bound', 'Result'],
  ...goals.map((g) => [g.name, `${figure(g.measured)} ${g.unit}`, `${g.compare} ${figure(g.limit)} ${g.unit}`, g.pass ? 'PASS' : 'FAIL'])]));
for (const g of goals.filter((g) => !g.pass && g.why)) console.log(`FAIL ${g.name}: ${g.why}`);
for (const s of skipped) console.log(`NOT MEASURED ${s}`);

// One entry per part: running some parts keeps the other parts' last figures (each with its own date).
const out = join(here, 'results.json');
const previous = existsSync(out) ? (JSON.parse(await readFile(out, 'utf8')) as { parts?: Record<string, unknown> }).parts ?? {} : {};
const ran = Object.fromEntries(parts.filter((p) => !wanted.length || wanted.includes(p.name)).map((p) => [p.name, {
  takenAt: new Date().toISOString(), machine: facts,
  sections: sections.filter((s) => sectionPart.get(s) === p.name),
  skipped: skipped.filter((s) => s.startsWith(`${p.name}:`)),
}]));
await writeFile(out, `${JSON.stringify({ parts: { ...previous, ...ran } }, null, 2)}\n`);
console.log(`\nwrote ${out}`);
process.exit(goals.every((g) => g.pass) && !skipped.length ? 0 : 1);
