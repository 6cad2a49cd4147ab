// Stage 7, security: a table of hostile form values, one field at a time, every field the researcher
// controls plus the ones a crafted POST can fill (cluster, the account). Each launch is rendered by real
// Ruby as the dashboard renders it (test/support/ood-dashboard.rb); each accepted one is staged and its
// settings.sh sourced by real bash. Every value must either reach bash exactly as typed (numbers as the
// whole number they spell) or be refused by submit.yml.erb with one of the app's own sentences. A
// canary file proves that nothing ran: not in Ruby, not in bash.
import t from 'tap';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultJobName, renderLaunches, sbatchArgs, type LaunchRequest } from './support/ood.js';
import { builtApp } from './support/app.js';
import { submitMessages } from '../src/messages.js';
import { hostileValues } from './support/hostile-values.js';

const CANARY = '/tmp/ood-jupyter-hostile-canary';
await rm(CANARY, { force: true });
const { texts, numbers } = hostileValues(`touch ${CANARY}`, CANARY);

const fields = ['slurm_partition', 'container', 'custom_image', 'num_gpus', 'num_cores', 'memory_gb', 'bc_num_hours', 'working_dir', 'extra_binds', 'auto_accounts', 'cluster'];
const numberFields = new Set(['num_gpus', 'num_cores', 'memory_gb', 'bc_num_hours']);

/** A valid launch on the bundled gpu partition, for the one field under test to spoil. */
const base = (container = 'pytorch'): Record<string, string> => ({
  cluster: 'example', slurm_partition: 'gpu', container, custom_image: '', num_gpus: '1', num_cores: '2', memory_gb: '8',
  bc_num_hours: '1', working_dir: '', extra_binds: '', auto_accounts: 'lab',
});

interface Case { field: string; category: string; value: string; values: Record<string, string> }
const cases: Case[] = [];
for (const field of fields) {
  const values = numberFields.has(field) ? [...numbers, ...texts] : texts;
  for (const [category, value] of values) {
    // Paths are tried as they are and under an allowed place, so that text that is a legal path gets through to bash.
    const variants = field === 'working_dir' ? [value, `/tmp/${value}`] : field === 'custom_image' ? [value, `/scratch/${value}.sif`] : field === 'extra_binds' ? [value, `/tmp/${value}`] : [value];
    for (const v of variants) {
      cases.push({ field, category, value: v, values: { ...base(field === 'custom_image' ? 'custom' : 'pytorch'), [field]: v } });
    }
  }
}

// The app's sentences, as patterns: a refusal must be one of them (with the value shown, cut at 80).
const sentence = (template: string) => new RegExp(`^${template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%\\\{\w+\\\}/g, '[^]*')}$`);
const sentences = Object.values(submitMessages).map(sentence);

t.test(`${cases.length} hostile form values, each rendered by real Ruby and, where accepted, sourced by real bash`, async (t) => {
  t.ok(cases.length >= 200, `at least 200 (${cases.length})`);
  const app = await builtApp();
  t.teardown(app.cleanup);
  await mkdir(join(app.workDir, 's'), { recursive: true });
  const requests: LaunchRequest[] = cases.map((c, i) => ({ values: c.values, stagedRoot: join(app.workDir, 's', String(i)) }));
  const results = await renderLaunches(app.appDir, requests, { scheduler: { accounts: ['lab'] } });
  let accepted = 0;
  let refused = 0;
  const byField = new Map<string, { accepted: number; refused: number }>();
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    const name = `${c.field} = ${c.category} (${JSON.stringify(c.value).slice(0, 40)})`;
    const tally = byField.get(c.field) ?? { accepted: 0, refused: 0 };
    byField.set(c.field, tally);
    if (!r.ok) {
      refused += 1;
      tally.refused += 1;
      t.equal(r.failedAt, 'submit', `${name}: refused by submit.yml.erb, before anything is staged`);
      t.ok(sentences.some((s) => s.test(r.error ?? '')), `${name}: refused with one of the app's sentences: ${JSON.stringify((r.error ?? '').slice(0, 160))}`);
      continue;
    }
    accepted += 1;
    tally.accepted += 1;
    for (const script of ['settings.sh', 'before.sh', 'script.sh', 'after.sh']) {
      const parsed = await execa('bash', ['-n', join(r.stagedRoot!, script)], { reject: false });
      if (parsed.exitCode !== 0) t.fail(`${name}: bash -n ${script}: ${parsed.stderr}`);
    }
    const read = await execa('bash', ['--norc', '--noprofile', '-c',
      'source ./settings.sh && printf "%s\\0" "$partition" "$container" "$custom_image" "$gpu_count" "$working_dir" "$extra_binds"'],
    { cwd: r.stagedRoot!, reject: false, stripFinalNewline: false });
    t.equal(read.exitCode, 0, `${name}: settings.sh sources (${read.stderr.trim()})`);
    const [partition, container, customImage, gpus, workingDir, extraBinds] = read.stdout.split('\0');
    const want = { partition: c.values.slurm_partition, container: c.values.container, customImage: c.values.custom_image!.trim(),
      gpus: String(Number(c.values.num_gpus!.trim())), workingDir: c.values.working_dir, extraBinds: c.values.extra_binds };
    t.same({ partition, container, customImage, gpus, workingDir, extraBinds }, want, `${name}: accepted, and bash has exactly the value`);
    // The account reaches sbatch as one argument of its own (-A VALUE), never as an option.
    const args = sbatchArgs(r.submit!, { stagedRoot: r.stagedRoot!, jobName: defaultJobName(app.appDir) });
    const account = args[args.indexOf('-A') + 1];
    t.equal(account, c.values.auto_accounts!.trim() || 'lab', `${name}: sbatch -A ${account}`);
    t.notOk(account?.startsWith('-'), `${name}: the account is no option`);
  }
  t.comment(`accepted ${accepted}, refused ${refused}: ${[...byField].map(([f, n]) => `${f} ${n.accepted}/${n.refused}`).join(', ')}`);
  t.notOk(existsSync(CANARY), 'the canary file does not exist: no value ran anything');
});
