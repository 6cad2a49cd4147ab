// Step 2 of the pipeline: check every preset file against its schema, then the references
// between files, and report every problem at once as FILE:LINE field: message.
import type { z } from 'zod';
import {
  containerSchema, fileNamePattern, partitionSchema, siteSchema,
  type Container, type Partition, type Site,
} from './schema.js';
import type { LoadedPresets, PresetFile } from './load.js';
import { fieldName, PresetError, type Problem } from './problems.js';
import type { FieldPath } from './yaml-source.js';

/** A bounded number as the form and submit.yml.erb use it: every bound resolved. */
export interface Bounds { min: number; max: number; default: number }

export interface ValidPartition {
  name: string;
  source: string;
  label: string;
  description: string;
  cluster: string;
  gpus: Bounds & { type: string | null; request: 'gres' | 'gpus-per-node' };
  memoryGb: Bounds;
  hours: Bounds;
  cores: Bounds & { maxPerGpu: number | null };
  sbatchArgs: string[];
  /** Minutes without activity before the session ends itself; 0 = never. */
  idleMinutes: number;
  /** Allowed container names, in form order. */
  containers: string[];
  defaultContainer: string;
}

export interface ValidContainer extends Container {
  name: string;
  source: string;
}

export interface ValidPresets {
  site: Omit<Site, 'cluster' | 'partitions'> & { clusters: string[] };
  /** In form order: the first is the form's default. */
  partitions: ValidPartition[];
  containers: ValidContainer[];
}

/** The container value the form uses for "my own image"; no container file may take it. */
export const CUSTOM_IMAGE_CHOICE = 'custom';

export function validatePresets(loaded: LoadedPresets): ValidPresets {
  const problems: Problem[] = [];
  const report = (file: PresetFile, path: FieldPath, message: string) =>
    problems.push({ file: file.displayPath, line: file.yaml.lineOf(path), field: fieldName(path), message });

  const site = checkSchema(siteSchema, loaded.site, report);
  const partitions = loaded.partitions.map((file) => ({ file, preset: checkSchema(partitionSchema, file, report) }));
  const containers = loaded.containers.map((file) => ({ file, preset: checkSchema(containerSchema, file, report) }));

  for (const { file } of partitions) {
    if (!fileNamePattern.test(file.name)) report(file, [], `file name "${file.name}" must be the Slurm partition name (letters, digits, "_", "." or "-")`);
  }
  for (const { file } of containers) {
    if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(file.name)) report(file, [], `file name "${file.name}" must be lower-case letters, digits and "-" (it becomes the form value)`);
    if (file.name === CUSTOM_IMAGE_CHOICE) report(file, [], `"${CUSTOM_IMAGE_CHOICE}" is reserved for the researcher's own image; rename the file`);
  }
  if (partitions.length === 0) problems.push({ file: loaded.site.displayPath, line: 1, field: '', message: 'no partition presets found in partitions/' });
  if (containers.length === 0) problems.push({ file: loaded.site.displayPath, line: 1, field: '', message: 'no container presets found in containers/' });
  checkDirectiveTokens(partitions.map((p) => p.file), report);

  if (!site || problems.length > 0) throw new PresetError(problems);
  const clusters = typeof site.cluster === 'string' ? [site.cluster] : site.cluster;
  const containerNames = containers.map((c) => c.file.name);

  const validPartitions: ValidPartition[] = [];
  for (const { file, preset } of partitions) {
    if (!preset) continue;
    const valid = resolvePartition(file, preset, clusters, containerNames, (path, message) => report(file, path, message));
    if (valid) validPartitions.push(valid);
  }
  const ordered = orderPartitions(loaded.site, site, partitions.map((p) => p.file.name), validPartitions, report);
  checkCustomImages(loaded.site, site, report);

  if (problems.length > 0) throw new PresetError(problems);
  const { cluster: _cluster, partitions: _order, ...siteRest } = site;
  return {
    site: { ...siteRest, clusters },
    partitions: ordered,
    containers: containers.map(({ file, preset }) => ({ ...preset!, name: file.name, source: file.displayPath })),
  };
}

type Report = (file: PresetFile, path: FieldPath, message: string) => void;

function checkSchema<T extends z.ZodType>(schema: T, file: PresetFile, report: Report): z.infer<T> | null {
  const result = schema.safeParse(file.yaml.value ?? {}, { reportInput: true });
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) report(file, [...path, key], 'is not a known field (check the spelling against the README\'s preset reference)');
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      report(file, path, 'is required');
    } else if (issue.code === 'invalid_type' && path.length === 0) {
      report(file, path, 'must be a YAML mapping of fields');
    } else {
      report(file, path, issue.message);
    }
  }
  return null;
}

/** Resolve a partition's optional bounds and check them against each other and the other files. */
function resolvePartition(
  file: PresetFile, preset: Partition, clusters: string[], containerNames: string[],
  report: (path: FieldPath, message: string) => void,
): ValidPartition | null {
  let ok = true;
  const fail = (path: FieldPath, message: string) => { ok = false; report(path, message); };

  const bounds = (field: string, b: { min?: number | undefined; max: number; default?: number | undefined }, floor: number): Bounds => {
    const min = b.min ?? floor;
    const resolved = { min, max: b.max, default: b.default ?? min };
    if (min > b.max) fail([field, 'min'], `(${min}) is above max (${b.max})`);
    else if (resolved.default < min || resolved.default > b.max) fail([field, 'default'], `(${resolved.default}) must be between min (${min}) and max (${b.max})`);
    return resolved;
  };

  const hasGpus = preset.gpus.max > 0;
  const gpus = { ...bounds('gpus', preset.gpus, hasGpus ? 1 : 0), type: preset.gpus.type ?? null, request: preset.gpus.request };
  if (!hasGpus && preset.gpus.type) fail(['gpus', 'type'], 'is set but gpus.max is 0 (a CPU partition has no GPU type)');
  const cores = { ...bounds('cores', preset.cores, 1), maxPerGpu: preset.cores.maxPerGpu ?? null };
  if (cores.maxPerGpu !== null) {
    if (!hasGpus) fail(['cores', 'maxPerGpu'], 'applies only to partitions with GPUs (gpus.max > 0)');
    else if (cores.default > cores.maxPerGpu * Math.max(gpus.default, 1)) {
      fail(['cores', 'default'], `(${cores.default}) is above cores.maxPerGpu × gpus.default (${cores.maxPerGpu * Math.max(gpus.default, 1)})`);
    }
  }

  const cluster = preset.cluster ?? clusters[0]!;
  if (preset.cluster === undefined && clusters.length > 1) fail(['cluster'], `is required: the site has several clusters (${clusters.join(', ')})`);
  if (!clusters.includes(cluster)) fail(['cluster'], `"${cluster}" is not one of the site's clusters (${clusters.join(', ')})`);

  let allowed = containerNames;
  if (preset.containers !== 'all') {
    allowed = [];
    preset.containers.forEach((name, i) => {
      if (!containerNames.includes(name)) fail(['containers', i], `"${name}" is not a container preset (known: ${containerNames.join(', ')})`);
      else if (allowed.includes(name)) fail(['containers', i], `"${name}" is listed twice`);
      else allowed.push(name);
    });
    // Keep the form's container order, whatever order a partition lists them in.
    allowed = containerNames.filter((name) => allowed.includes(name));
  }
  const defaultContainer = preset.defaultContainer ?? allowed[0] ?? '';
  if (preset.defaultContainer !== undefined && !allowed.includes(preset.defaultContainer)) {
    fail(['defaultContainer'], `"${preset.defaultContainer}" is not among this partition's containers (${allowed.join(', ')})`);
  }
  if (!ok) return null;
  return {
    name: file.name, source: file.displayPath, label: preset.label, description: preset.description, cluster,
    gpus, memoryGb: bounds('memoryGb', preset.memoryGb, 1), hours: bounds('hours', preset.hours, 1), cores,
    sbatchArgs: preset.sbatchArgs, containers: allowed, defaultContainer, idleMinutes: preset.idleMinutes,
  };
}

/** The site's `partitions:` list orders the form; without it, files go alphabetically. */
function orderPartitions(
  siteFile: PresetFile, site: Site, fileNames: string[], partitions: ValidPartition[], report: Report,
): ValidPartition[] {
  if (!site.partitions) return partitions;
  const listed: string[] = [];
  site.partitions.forEach((name, i) => {
    if (!fileNames.includes(name)) report(siteFile, ['partitions', i], `"${name}" has no preset file partitions/${name}.yml`);
    else if (listed.includes(name)) report(siteFile, ['partitions', i], `"${name}" is listed twice`);
    else listed.push(name);
  });
  for (const name of fileNames) {
    if (!listed.includes(name)) report(siteFile, ['partitions'], `does not list "${name}" (partitions/${name}.yml); add it, or remove the file`);
  }
  return listed.flatMap((name) => partitions.filter((p) => p.name === name));
}

function checkCustomImages(siteFile: PresetFile, site: Site, report: Report) {
  const { allow, pathPrefixes, registries } = site.customImages;
  if (allow && pathPrefixes.length === 0 && registries.length === 0) {
    report(siteFile, ['customImages', 'allow'], 'is true, but neither pathPrefixes nor registries says where an image may come from');
  }
  if (!allow && (pathPrefixes.length > 0 || registries.length > 0)) {
    report(siteFile, ['customImages', 'allow'], 'is false, so pathPrefixes and registries would have no effect; set allow: true or remove them');
  }
}

/**
 * OOD's form directives name a value in lower case with "-" for "_" (dynamic_forms.js),
 * so `gpu_a` and `GPU-A` would be the same partition to the browser.
 */
function checkDirectiveTokens(files: PresetFile[], report: Report) {
  const seen = new Map<string, string>();
  for (const file of files) {
    const token = directiveToken(file.name);
    const other = seen.get(token);
    if (other) report(file, [], `the form cannot tell partition "${file.name}" from "${other}" (OOD compares them as "${token}")`);
    seen.set(token, file.name);
  }
}

export function directiveToken(value: string): string {
  return value.toLowerCase().replaceAll('_', '-');
}
