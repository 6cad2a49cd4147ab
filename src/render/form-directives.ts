// OOD's dynamic form directives, generated from the presets instead of written by hand.
// Each partition option carries its own limits (O(partitions)); each container option names
// only the partitions that do NOT offer it (O(containers), plus exclusions).
// Directive names use the attribute id with "_" as "-", and values as directiveToken() spells them.
//
// No data-set-* on the partitions: OOD's dynamic_forms.js applies every data-set-* once when the
// page loads, which would throw away the values the dashboard remembers from the researcher's last
// launch (and flip a remembered "Your own image" back). data-min-*/data-max-* are enough: OOD
// clamps the current value into the chosen partition's range, at load and on every change.
import type { AppPlan } from '../plan.js';
import { ATTRIBUTE_IDS } from '../plan.js';
import { directiveToken, type ValidContainer, type ValidPartition } from '../presets/validate.js';
import { gpusOnPartition } from './form-text.js';

export type Directive = [name: string, value: string | number | boolean];

const attr = (id: string) => id.replaceAll('_', '-');

export function partitionDirectives(partition: ValidPartition, plan: AppPlan): Directive[] {
  const directives: Directive[] = [];
  const bound = (id: string, b: { min: number; max: number }) => {
    directives.push([`data-min-${attr(id)}`, b.min], [`data-max-${attr(id)}`, b.max]);
  };
  if (plan.anyGpus) {
    bound(ATTRIBUTE_IDS.gpus, partition.gpus);
    if (partition.gpus.max === 0) directives.push([`data-hide-${attr(ATTRIBUTE_IDS.gpus)}`, true]);
  }
  bound(ATTRIBUTE_IDS.cores, partition.cores);
  bound(ATTRIBUTE_IDS.memory, partition.memoryGb);
  bound(ATTRIBUTE_IDS.hours, partition.hours);
  for (const cluster of plan.site.clusters) {
    if (plan.site.clusters.length > 1 && cluster !== partition.cluster) {
      directives.push([`data-option-for-${attr(ATTRIBUTE_IDS.cluster)}-${directiveToken(cluster)}`, false]);
    }
  }
  // OOD 4.1+ only (older dashboards ignore it; the partition's help lists every limit): the help
  // under the GPU field names this partition's own limit.
  if (plan.anyGpus && partition.gpus.max > 0) {
    directives.push([`data-help-${attr(ATTRIBUTE_IDS.gpus)}`, gpusOnPartition(partition)]);
  }
  return directives;
}

export function containerDirectives(container: ValidContainer, plan: AppPlan): Directive[] {
  const directives: Directive[] = plan.partitions
    .filter((p) => !p.containers.includes(container.name))
    .map((p) => [`data-option-for-${attr(ATTRIBUTE_IDS.partition)}-${directiveToken(p.name)}`, false]);
  if (plan.customImageChoice) directives.push([`data-hide-${attr(ATTRIBUTE_IDS.customImage)}`, true]);
  return directives;
}
