// `ood-jupyter doctor`: every claim of the presets checked against the real cluster. The cluster
// checks (runtime, images, partitions) are one bash program of the job's own library, run here or
// where --run-with says (e.g. "ssh login01"); the portal checks (the OOD cluster id, the portal's
// origins) are made on this machine, the OOD host.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { AppPlan } from './plan.js';
import type { RenderedFile } from './render/render.js';
import { doctorProgram } from './render/job-scripts.js';

export interface Finding { status: 'ok' | 'warn' | 'fail'; check: string; reason: string }

const exampleOrigin = /\bexample\.(edu|org|com|net)\b/;

export async function runDoctor(plan: AppPlan, files: RenderedFile[], options: { runWith?: string; clustersDir: string }): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const cluster of plan.site.clusters) {
    const file = join(options.clustersDir, `${cluster}.yml`);
    const found = await access(file).then(() => true, () => false);
    findings.push(found
      ? { status: 'ok', check: `OOD cluster ${cluster}`, reason: file }
      : { status: 'fail', check: `OOD cluster ${cluster}`, reason: `${file} does not exist: the dashboard cannot submit to "${cluster}" (site.yml cluster)` });
  }
  const placeholders = plan.site.portal.origins.filter((o) => exampleOrigin.test(o));
  findings.push(placeholders.length
    ? { status: 'warn', check: 'portal origins', reason: `${placeholders.join(', ')} looks like an example: list the addresses researchers open OnDemand at` }
    : { status: 'ok', check: 'portal origins', reason: plan.site.portal.origins.join(', ') });

  const prefix = options.runWith ? options.runWith.trim().split(/\s+/) : [];
  const [command, ...args] = [...prefix, 'bash', '--norc', '--noprofile', '-s'];
  const result = await execa(command!, args, { input: doctorProgram(plan, files), reject: false });
  const before = findings.length;
  for (const line of result.stdout.split(/\r?\n/)) {
    const [status, check, reason] = line.split('\t');
    if ((status === 'ok' || status === 'warn' || status === 'fail') && check && reason !== undefined) findings.push({ status, check, reason });
  }
  if (result.exitCode !== 0 && findings.length === before) {
    findings.push({ status: 'fail', check: 'doctor', reason: `the checks did not run${options.runWith ? ` with "${options.runWith}"` : ''}: ${String(result.stderr || result.message || "").trim().split("\n").at(-1)}` });
  }
  return findings.map((f) => ({ status: f.status, check: printable(f.check), reason: printable(f.reason) }));
}

/**
 * Text for staff's terminal. Findings quote what the cluster says (image labels, runtime, Slurm and ssh
 * messages), which an image's author or a remote host controls: every C0 control, DEL and C1 control
 * becomes a visible \xNN, so no escape sequence (clear the screen, set the window title, rewrite a line)
 * reaches the terminal as one. Also what --json prints.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The findings as a table; colour only where asked (a terminal without NO_COLOR). */
export function doctorTable(findings: Finding[], colour: boolean): string {
  const paint = (status: Finding['status']) => {
    const text = status.padEnd(4);
    if (!colour) return text;
    return `\u001b[${status === 'ok' ? 32 : status === 'warn' ? 33 : 31}m${text}\u001b[0m`;
  };
  const width = Math.min(64, Math.max(5, ...findings.map((f) => f.check.length)));
  return [
    `${'STATUS'.padEnd(6)}  ${'CHECK'.padEnd(width)}  REASON`,
    ...findings.map((f) => `${paint(f.status)}    ${f.check.padEnd(width)}  ${f.reason}`),
  ].join('\n');
}
