// `ood-jupyter docs`: the page a center publishes for its researchers, from the plan (the same data the
// app is built from, so the page cannot disagree with the form). One list of blocks, written out twice:
// as Markdown (for a docs site or a wiki) and as a standalone HTML page.
import type { AppPlan } from '../plan.js';
import { ATTRIBUTE_IDS } from '../plan.js';
import { docsText } from '../messages.js';

type Inline = string;
type Block =
  | { kind: 'h1' | 'h2' | 'p'; text: Inline }
  | { kind: 'list'; items: readonly Inline[] }
  | { kind: 'table'; head: readonly string[]; rows: string[][] }
  | { kind: 'code'; text: string };

const range = (min: number, max: number, unit: string) => (min === max ? `${max} ${unit}` : `${min}–${max} ${unit}`);

/** The launch link for a partition with its defaults, on the site's first portal address. */
export function launchLink(plan: AppPlan, values: Record<string, string | number>): string {
  const origin = plan.site.portal.origins[0]!;
  const query = new URLSearchParams(Object.entries(values).map(([k, v]) => [k, String(v)]));
  return `${origin}/pun/sys/dashboard/batch_connect/sys/${plan.appName}/session_contexts/new?${query.toString()}`;
}

function blocks(plan: AppPlan): Block[] {
  const t = docsText;
  const ids = ATTRIBUTE_IDS;
  const labelOf = (name: string) => plan.containers.find((c) => c.name === name)?.label ?? name;
  const out: Block[] = [
    { kind: 'h1', text: plan.site.title },
    { kind: 'p', text: plan.site.description.trim() },
    { kind: 'h2', text: t.partitionsTitle },
    { kind: 'p', text: t.partitionsIntro },
    {
      kind: 'table', head: t.partitionsHead,
      rows: plan.partitions.map((p) => [
        `${p.label} (\`${p.name}\`)`,
        p.gpus.max > 0 ? `${range(p.gpus.min, p.gpus.max, '')}${p.gpus.type ? ` ${p.gpus.type}` : ''}`.replace(/\s+/g, ' ').trim() : t.noGpus,
        range(p.cores.min, p.cores.max, ''), `${range(p.memoryGb.min, p.memoryGb.max, 'GB')}`, range(p.hours.min, p.hours.max, 'h'),
        p.idleMinutes > 0 ? `${p.idleMinutes} min` : t.never,
        p.containers.map(labelOf).join(', '),
      ].map((cell) => cell.trim())),
    },
    { kind: 'h2', text: t.containersTitle },
    {
      kind: 'table', head: t.containersHead,
      rows: plan.containers.map((c) => [c.label, c.description || '', `\`${c.image}\``, c.jupyterlab ? t.jupyterInImage : t.jupyterFromSite]),
    },
  ];
  const own = plan.site.customImages;
  if (own.allow) {
    out.push({ kind: 'h2', text: t.ownTitle }, { kind: 'p', text: t.ownIntro }, {
      kind: 'list', items: [...own.pathPrefixes.map((p) => t.ownPath.replace('%{dir}', `\`${p}/\``)), ...own.registries.map((r) => t.ownRegistry.replace('%{scheme}', `\`${r}://\``))],
    });
  }
  out.push(
    { kind: 'h2', text: t.kernelsTitle },
    { kind: 'list', items: t.kernelsItems },
    { kind: 'code', text: t.kernelsCode },
    { kind: 'h2', text: t.batchTitle },
    { kind: 'p', text: t.batchIntro },
    { kind: 'code', text: `ood-jupyter batch-script --partition ${plan.partitions[0]!.name} --container ${plan.partitions[0]!.defaultContainer} -- python3 train.py > job.sh && sbatch job.sh` },
    { kind: 'h2', text: t.linksTitle },
    { kind: 'p', text: t.linksIntro },
    {
      kind: 'list', items: plan.partitions.map((p) => {
        const values: Record<string, string | number> = { [ids.partition]: p.name, [ids.container]: p.defaultContainer };
        if (p.gpus.max > 0) values[ids.gpus] = p.gpus.default;
        values[ids.hours] = p.hours.default;
        return `${p.label}, ${labelOf(p.defaultContainer)}: <${launchLink(plan, values)}>`;
      }),
    },
  );
  return out;
}

const mdCell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function docsMarkdown(plan: AppPlan): string {
  const lines: string[] = [`<!-- ${plan.generator.name} ${plan.generator.version} docs: generated from the presets; rebuild instead of editing. -->`, ''];
  for (const b of blocks(plan)) {
    if (b.kind === 'h1') lines.push(`# ${b.text}`, '');
    else if (b.kind === 'h2') lines.push(`## ${b.text}`, '');
    else if (b.kind === 'p') lines.push(b.text, '');
    else if (b.kind === 'list') lines.push(...b.items.map((i) => `- ${i}`), '');
    else if (b.kind === 'code') lines.push('```', b.text, '```', '');
    else if (b.kind === 'table') lines.push(`| ${b.head.map(mdCell).join(' | ')} |`, `|${b.head.map(() => '---').join('|')}|`, ...b.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`), '');
  }
  return lines.join('\n');
}

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** The few inline forms the blocks use: `code`, **bold** and <links>. */
const inline = (text: string) => esc(text)
  .replace(/`([^`]+)`/g, '<code>$1</code>')
  .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
  .replace(/&lt;(https?:\/\/[^\s&]+(?:&amp;[^\s&]+)*)&gt;/g, (_, url: string) => `<a href="${url}">${url}</a>`);

export function docsHtml(plan: AppPlan): string {
  const body = blocks(plan).map((b) => {
    if (b.kind === 'h1' || b.kind === 'h2' || b.kind === 'p') return `<${b.kind}>${inline(b.text)}</${b.kind}>`;
    if (b.kind === 'list') return `<ul>\n${b.items.map((i) => `  <li>${inline(i)}</li>`).join('\n')}\n</ul>`;
    if (b.kind === 'code') return `<pre><code>${esc(b.text)}</code></pre>`;
    if (b.kind !== 'table') return '';
    return `<table>\n  <tr>${b.head.map((h) => `<th>${inline(h)}</th>`).join('')}</tr>\n${b.rows.map((r) => `  <tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('\n')}\n</table>`;
  }).join('\n');
  return `<!doctype html>
<!-- ${esc(`${plan.generator.name} ${plan.generator.version}`)} docs: generated from the presets; rebuild instead of editing. -->
<html lang="en"><head><meta charset="utf-8"><title>${esc(plan.site.title)}</title>
<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;line-height:1.45}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}code,pre{background:#f4f4f4}pre{padding:.6rem;overflow-x:auto}</style>
</head><body>
${body}
</body></html>
`;
}
