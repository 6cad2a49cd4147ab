// The form's labels and help texts for a plan: the sentences of messages.ts (formText) with the
// presets' partitions, containers and site filled in. form.yml.ejs only places them.
import type { AppPlan } from '../plan.js';
import { fill, formText } from '../messages.js';

const gpuType = (type: string | null | undefined) => (type ? ` ${type}` : '');

/** "1–4 a100 GPUs per session on GPU (A100).": the GPU field's help for one partition (OOD 4.1+). */
export const gpusOnPartition = (p: AppPlan['partitions'][number]): string =>
  fill(formText.gpusOnPartition, { min: p.gpus.min, max: p.gpus.max, type: gpuType(p.gpus.type), partition: p.label });

export function formHelp(plan: AppPlan) {
  const limits = (p: AppPlan['partitions'][number]) => fill(formText.partitionLimits, {
    label: p.label, name: p.name,
    gpus: p.gpus.max > 0 ? fill(formText.partitionGpus, { min: p.gpus.min, max: p.gpus.max, type: gpuType(p.gpus.type) }) : formText.partitionNoGpus,
    cores: `${p.cores.min}–${p.cores.max}`, memory: `${p.memoryGb.min}–${p.memoryGb.max}`, hours: `${p.hours.min}–${p.hours.max}`,
  }) + (p.idleMinutes > 0 ? fill(formText.partitionIdle, { minutes: p.idleMinutes }) : '') + (p.description ? `. ${p.description}` : '');
  const own = plan.site.customImages;
  return {
    partition: `${formText.partitionHelp}\n\n${plan.partitions.map((p) => `- ${limits(p)}`).join('\n')}`,
    container: formText.containerHelp + (plan.customImageChoice ? ` ${formText.containerHelpOwnImage}` : ''),
    customImage: fill(formText.customImageHelp, {
      allowed: [...own.pathPrefixes.map((dir) => fill(formText.customImagePath, { dir })),
        ...own.registries.map((scheme) => fill(formText.customImageRegistry, { scheme }))].join(', '),
    }),
    gpus: formText.gpusHelp,
    cores: formText.coresHelp,
    memory: formText.memoryHelp,
    hours: formText.hoursHelp,
    account: formText.accountHelp,
    accountOptional: formText.accountHelpOptional,
    workingDir: formText.workingDirHelp,
    extraBinds: `${formText.extraBindsHelp} ${plan.site.binds.length
      ? fill(formText.extraBindsMounted, { binds: plan.site.binds.map((b) => `\`${b}\``).join(', ') })
      : formText.extraBindsMountedDefault}`,
  };
}
