// `ood-jupyter init`: a preset directory to start from. With --from-slurm, one partition preset per
// Slurm partition, with the limits Slurm itself enforces on one node of it (the smallest node: a
// session runs on one): its cores, memory and GPUs (gres type and count), and its MaxTime. Staff
// then edit labels, defaults and containers. Files are hand-written YAML with comments, not dumps.
import { access, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileNamePattern } from './presets/schema.js';
import { jsonSchemaFiles, schemaModeline } from './presets/json-schema.js';
import type { SlurmPartition } from './slurm.js';

export interface ScaffoldFile { path: string; content: string }

const yamlString = (text: string) => JSON.stringify(text);

/** The largest request every node of the partition can take, and its defaults. */
function limitsOf(p: SlurmPartition) {
  const smallest = (values: number[]) => (values.length ? Math.min(...values) : 0);
  const cores = Math.max(1, Math.min(smallest(p.nodes.map((n) => n.cpus)) || 1, p.maxCpusPerNode ?? Infinity));
  const memoryMb = Math.min(smallest(p.nodes.map((n) => n.memoryMb)), p.maxMemPerNodeMb ?? Infinity);
  const memoryGb = Math.max(1, Math.floor(memoryMb / 1024));
  const gpuNodes = p.nodes.filter((n) => n.gpus.count > 0);
  const gpus = gpuNodes.length === p.nodes.length ? smallest(p.nodes.map((n) => n.gpus.count)) : 0;
  const types = new Set(gpuNodes.map((n) => n.gpus.type));
  const gpuType = types.size === 1 ? [...types][0] ?? null : null;
  const hours = p.maxMinutes === null ? null : Math.max(1, Math.floor(p.maxMinutes / 60));
  return { cores, memoryGb, gpus, gpuType, hours };
}

export function partitionPreset(p: SlurmPartition, date: string): string {
  const l = limitsOf(p);
  const maxHours = l.hours ?? 24;
  const defaultHours = Math.min(p.defaultMinutes ? Math.max(1, Math.floor(p.defaultMinutes / 60)) : 2, maxHours);
  const gpuText = l.gpus > 0 ? `${l.gpus}${l.gpuType ? ` ${l.gpuType}` : ''} GPU(s)` : 'no GPUs';
  const lines = [
    schemaModeline('partition'),
    `# Slurm partition "${p.name}", read from scontrol on ${date}: ${p.nodes.length} node(s), the smallest with`,
    `# ${l.cores} CPUs, ${l.memoryGb} GB and ${gpuText}${p.isDefault ? '; the cluster\'s default partition' : ''}. Edit the label, the defaults and`,
    '# the containers; `ood-jupyter validate` checks the file.',
    `label: ${yamlString(p.name)}`,
    `description: ${yamlString(`${p.nodes.length} node(s) with ${l.cores} CPU cores, ${l.memoryGb} GB and ${gpuText}.`)}`,
  ];
  if (l.gpus > 0) {
    lines.push('gpus:');
    if (l.gpuType) lines.push(`  type: ${l.gpuType}`);
    lines.push(`  max: ${l.gpus}`, '  default: 1', '  min: 1');
  }
  lines.push(
    'memoryGb:', `  default: ${Math.min(8, l.memoryGb)}`, `  max: ${l.memoryGb}`,
    'hours:', `  default: ${defaultHours}`,
    l.hours === null ? `  max: ${maxHours} # MaxTime is UNLIMITED in Slurm: choose the longest session you allow` : `  max: ${maxHours}`,
    'cores:', `  default: ${Math.min(l.gpus > 0 ? Math.max(1, Math.floor(l.cores / l.gpus)) : 4, l.cores)}`, `  max: ${l.cores}`,
  );
  if (l.gpus > 0) lines.push(`  maxPerGpu: ${Math.max(1, Math.floor(l.cores / l.gpus))}`);
  return `${lines.join('\n')}\n`;
}

export function sitePreset(cluster: string, partitions: string[]): string {
  return [
    schemaModeline('site'),
    '# Site-wide settings for the JupyterLab app; every field is described in ood-jupyter\'s README.',
    '',
    '# The Open OnDemand cluster id: the name of /etc/ood/config/clusters.d/<id>.yml (often, not always,',
    '# Slurm\'s ClusterName).',
    `cluster: ${cluster}`,
    '',
    'title: JupyterLab',
    '',
    '# The form\'s partition list, in this order; the first is the default.',
    'partitions:',
    ...partitions.map((p) => `  - ${p}`),
    '',
    '# Every address researchers open OnDemand at: JupyterLab accepts requests from these origins only.',
    'portal:',
    '  origins:',
    '    - https://ondemand.example.edu # CHANGE: your portal',
    '',
  ].join('\n');
}

export const exampleContainer = [
  schemaModeline('container'),
  '# A container researchers can choose. Point image at a .sif with JupyterLab and ipykernel (or a',
  '# docker:// URI), and add one file per container.',
  'label: JupyterLab',
  'image: /path/to/images/jupyterlab.sif # CHANGE: an image on a file system the compute nodes mount',
  'description: Python 3 with JupyterLab and ipykernel.',
  'jupyterlab: true',
  '',
].join('\n');

/** An example partition for `init` without --from-slurm. */
export const examplePartition = [
  schemaModeline('partition'),
  '# One Slurm partition researchers can choose; the file name is the partition\'s Slurm name.',
  'label: "CPU only"',
  'memoryGb:',
  '  default: 8',
  '  max: 64',
  'hours:',
  '  default: 2',
  '  max: 24',
  'cores:',
  '  default: 4',
  '  max: 32',
  '',
].join('\n');

export function scaffold(partitions: SlurmPartition[] | null, cluster: string | null, date: string): { files: ScaffoldFile[]; skipped: string[] } {
  const skipped: string[] = [];
  const usable = (partitions ?? []).filter((p) => {
    const ok = fileNamePattern.test(p.name) && p.nodes.length > 0;
    if (!ok) skipped.push(`${p.name} (${p.nodes.length === 0 ? 'no nodes' : 'a name the form cannot use'})`);
    return ok;
  });
  const ordered = [...usable.filter((p) => p.isDefault), ...usable.filter((p) => !p.isDefault)];
  const files: ScaffoldFile[] = partitions
    ? ordered.map((p) => ({ path: `partitions/${p.name}.yml`, content: partitionPreset(p, date) }))
    : [{ path: 'partitions/cpu.yml', content: examplePartition }];
  files.unshift({ path: 'site.yml', content: sitePreset(cluster ?? 'my-cluster', partitions ? ordered.map((p) => p.name) : ['cpu']) });
  files.push({ path: 'containers/jupyterlab.yml', content: exampleContainer });
  files.push(...jsonSchemaFiles().map((f) => ({ path: `schema/${f.file}`, content: f.content })));
  return { files, skipped };
}

/** Write FILES under DIR; an existing file is never replaced without FORCE (then nothing is written). */
export async function writeScaffold(dir: string, files: ScaffoldFile[], force: boolean): Promise<void> {
  if (!force) {
    const present = (await Promise.all(files.map(async (f) => (await access(join(dir, f.path)).then(() => true, () => false)) ? f.path : null)))
      .filter((p): p is string => p !== null);
    if (present.length) throw new ScaffoldExists(dir, present);
  }
  for (const f of files) {
    await mkdir(dirname(join(dir, f.path)), { recursive: true });
    await writeFile(join(dir, f.path), f.content);
  }
}

export class ScaffoldExists extends Error {
  constructor(readonly dir: string, readonly present: string[]) {
    super(`${dir} already has ${present.join(', ')}; nothing was written (--force replaces them)`);
  }
}
