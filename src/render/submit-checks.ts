// The limits submit.yml.erb checks every launch against, as plain JSON-able tables.
// They are embedded in the generated file, so the dashboard needs nothing but the app itself.
import type { AppPlan } from '../plan.js';

export function submitChecks(plan: AppPlan) {
  const { pathPrefixes, registries } = plan.site.customImages;
  return {
    partitions: Object.fromEntries(plan.partitions.map((p) => [p.name, {
      label: p.label,
      cluster: p.cluster,
      gpus: { min: p.gpus.min, max: p.gpus.max, type: p.gpus.type, request: p.gpus.request },
      cores: { min: p.cores.min, max: p.cores.max, maxPerGpu: p.cores.maxPerGpu },
      memoryGb: { min: p.memoryGb.min, max: p.memoryGb.max },
      hours: { min: p.hours.min, max: p.hours.max },
      sbatchArgs: p.sbatchArgs,
      containers: p.containers,
    }])),
    containers: Object.fromEntries(plan.containers.map((c) => [c.name, c.label])),
    customImages: plan.customImageChoice === null ? null : {
      choice: plan.customImageChoice,
      pathPrefixes,
      registries,
      where: [...pathPrefixes.map((p) => `a .sif file under ${p}/`), ...registries.map((r) => `a ${r}:// URI`)].join(', or '),
    },
  };
}
