// The limits submit.yml.erb checks every launch against, as plain JSON-able tables.
// They are embedded in the generated file, so the dashboard needs nothing but the app itself.
import type { AppPlan } from '../plan.js';
import { ATTRIBUTE_IDS } from '../plan.js';
import { formMessages, submitMessages } from '../messages.js';
import { registryImageJs, registryImageRuby } from '../rules.js';

/**
 * The containers a partition offers, or null when it offers every one: the tables then grow with
 * partitions + containers, not with their product (1000 partitions × 100 containers would otherwise
 * embed 100,000 names in submit.yml.erb and form.js; `npm run bench`).
 */
export function offeredContainers(partition: AppPlan['partitions'][number], plan: AppPlan): string[] | null {
  const offered = new Set(partition.containers);
  return plan.containers.every((c) => offered.has(c.name)) ? null : partition.containers;
}

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
      containers: offeredContainers(p, plan),
    }])),
    containers: Object.fromEntries(plan.containers.map((c) => [c.name, c.label])),
    customImages: plan.customImageChoice === null ? null : {
      choice: plan.customImageChoice,
      pathPrefixes,
      registries,
      // What a registry URI is (src/rules.ts), as the source of a Ruby Regexp: \A…\z.
      registryPattern: registryImageRuby,
      where: [...pathPrefixes.map((p) => `a .sif file under ${p}/`), ...registries.map((r) => `a ${r}:// URI`)].join(', or '),
    },
  };
}

/** The same limits for form.js, with each partition's defaults, and the sentences it shows. */
export function formScriptData(plan: AppPlan) {
  const checks = submitChecks(plan);
  const ids = ATTRIBUTE_IDS;
  return {
    ids: { partition: ids.partition, container: ids.container, customImage: ids.customImage, gpus: ids.gpus, cores: ids.cores, memory: ids.memory, hours: ids.hours, workingDir: ids.workingDir, extraBinds: ids.extraBinds },
    customChoice: plan.customImageChoice,
    // The same rule as submit.yml.erb's, as the source of a JavaScript RegExp: ^…$.
    customImages: checks.customImages && { ...checks.customImages, registryPattern: registryImageJs },
    containers: checks.containers,
    partitions: Object.fromEntries(plan.partitions.map((p) => [p.name, {
      label: p.label,
      limits: {
        [ids.gpus]: { min: p.gpus.min, max: p.gpus.max, default: p.gpus.default },
        [ids.cores]: { min: p.cores.min, max: p.cores.max, default: p.cores.default },
        [ids.memory]: { min: p.memoryGb.min, max: p.memoryGb.max, default: p.memoryGb.default },
        [ids.hours]: { min: p.hours.min, max: p.hours.max, default: p.hours.default },
      },
      maxCoresPerGpu: p.cores.maxPerGpu,
      containers: offeredContainers(p, plan),
      defaultContainer: p.defaultContainer,
    }])),
    labels: formMessages.fieldLabels,
    messages: { ...submitMessages, linkUsed: formMessages.linkUsed, linkIgnored: formMessages.linkIgnored, linkUnknownField: formMessages.linkUnknownField, linkNoBinds: formMessages.linkNoBinds, launchBlocked: formMessages.launchBlocked },
  };
}
