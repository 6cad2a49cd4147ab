// Step 3 of the pipeline: turn validated presets into the plain data every emitted file is
// rendered from. Nothing here knows about EJS or files, so later commands (preview, doctor,
// diff) can reuse the same plan.
import type { Bounds, ValidContainer, ValidPartition, ValidPresets } from './presets/validate.js';
import { CUSTOM_IMAGE_CHOICE } from './presets/validate.js';

/** The form's attribute ids. Sites' form.js and our tests rely on them: never rename one. */
export const ATTRIBUTE_IDS = {
  cluster: 'cluster',
  partition: 'slurm_partition',
  container: 'container',
  customImage: 'custom_image',
  gpus: 'num_gpus',
  cores: 'num_cores',
  memory: 'memory_gb',
  hours: 'bc_num_hours',
  workingDir: 'working_dir',
  extraBinds: 'extra_binds',
} as const;

export interface AppPlan {
  /** Directory name of the app (`/var/www/ood/apps/sys/<name>`). */
  appName: string;
  generator: { name: string; version: string };
  site: ValidPresets['site'];
  partitions: ValidPartition[];
  containers: ValidContainer[];
  /** The form's initial state: the first partition with its own defaults. */
  defaults: { partition: ValidPartition; container: string; gpus: number; memoryGb: number; hours: number; cores: number };
  /** The loosest bound over all partitions: what the browser enforces without bc_dynamic_js. */
  widest: { gpus: Bounds; memoryGb: Bounds; hours: Bounds; cores: Bounds };
  /** `auto_accounts`, `bc_account`, or none, per the site's account handling. */
  accountAttribute: 'auto_accounts' | 'bc_account' | null;
  customImageChoice: string | null;
  anyGpus: boolean;
}

export function planApp(presets: ValidPresets, generator: AppPlan['generator'], appName = 'jupyter-apptainer'): AppPlan {
  const first = presets.partitions[0]!;
  const widest = (pick: (p: ValidPartition) => Bounds, defaultValue: number): Bounds => ({
    min: Math.min(...presets.partitions.map((p) => pick(p).min)),
    max: Math.max(...presets.partitions.map((p) => pick(p).max)),
    default: defaultValue,
  });
  return {
    appName,
    generator,
    site: presets.site,
    partitions: presets.partitions,
    containers: presets.containers,
    defaults: {
      partition: first,
      container: first.defaultContainer,
      gpus: first.gpus.default,
      memoryGb: first.memoryGb.default,
      hours: first.hours.default,
      cores: first.cores.default,
    },
    widest: {
      gpus: widest((p) => p.gpus, first.gpus.default),
      memoryGb: widest((p) => p.memoryGb, first.memoryGb.default),
      hours: widest((p) => p.hours, first.hours.default),
      cores: widest((p) => p.cores, first.cores.default),
    },
    accountAttribute: ({ auto: 'auto_accounts', text: 'bc_account', none: null } as const)[presets.site.accounts],
    customImageChoice: presets.site.customImages.allow ? CUSTOM_IMAGE_CHOICE : null,
    anyGpus: presets.partitions.some((p) => p.gpus.max > 0),
  };
}
