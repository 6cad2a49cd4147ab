#!/usr/bin/env node
// The `ood-jupyter` command. One table below defines every command: its options, help and action.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { execa } from 'execa';
import { buildApp, checkPresets, generator, planFromPresets, renderFromPresets } from './build.js';
import { renderApp } from './render/render.js';
import { batchScript, pullProgram, RequestError } from './render/job-scripts.js';
import { docsHtml, docsMarkdown } from './render/docs.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatProblem, PresetError } from './presets/problems.js';
import { jsonSchemaFiles, presetKinds } from './presets/json-schema.js';
import { compareApp, type Change } from './compare.js';
import { deployApp, rollbackApp } from './deploy.js';
import { scaffold, ScaffoldExists, writeScaffold } from './init.js';
import { readSlurm } from './slurm.js';
import { formValues, preview } from './preview.js';
import { doctorTable, runDoctor } from './doctor.js';

const bundledPresets = relative(process.cwd(), fileURLToPath(new URL('../form-presets/', import.meta.url))) || '.';
const defaultOut = 'build/jupyter-apptainer';

interface Command {
  summary: string;
  usage: string;
  details: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Whether words after `--` are taken (batch-script's command). */
  positionals?: boolean;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number>;
}

const presetsOption = { presets: { type: 'string', default: bundledPresets } } as const;

const wholeNumber = (name: string, value: string | boolean | string[] | undefined) => {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[0-9]{1,7}$/.test(value)) throw new RequestError(`--${name} must be a whole number; you gave "${String(value)}"`);
  return Number(value);
};

const commands: Record<string, Command> = {
  init: {
    summary: 'start a preset directory, with --from-slurm one partition preset per Slurm partition',
    usage: 'ood-jupyter init [--from-slurm] [--dir DIR] [--force]',
    details: [
      '  --from-slurm   read the cluster (scontrol show partition/node/config, sinfo): each partition\'s',
      '                 MaxTime, and the cores, memory and GPUs (gres type and count) of its smallest node',
      '  --dir DIR      where to write site.yml, partitions/, containers/ and schema/ (default: presets)',
      '  --force        replace files that are already there (without it, nothing is written if any is)',
    ].join('\n'),
    options: { 'from-slurm': { type: 'boolean' }, dir: { type: 'string', default: 'presets' }, force: { type: 'boolean' } },
    async run(values) {
      const dir = String(values.dir);
      const slurm = values['from-slurm'] ? await readSlurm() : null;
      const { files, skipped } = scaffold(slurm?.partitions ?? null, slurm?.clusterName ?? null, new Date().toISOString().slice(0, 10));
      try {
        await writeScaffold(dir, files, Boolean(values.force));
      } catch (error) {
        if (!(error instanceof ScaffoldExists)) throw error;
        console.error(`ood-jupyter init: ${error.message}`);
        return 1;
      }
      for (const f of files) console.log(`  wrote ${dir}/${f.path}`);
      for (const s of skipped) console.log(`  skipped Slurm partition ${s}`);
      console.log(`Next: set portal.origins in ${dir}/site.yml, point ${dir}/containers/jupyterlab.yml at your image, then: ood-jupyter validate --presets ${dir}`);
      return 0;
    },
  },
  build: {
    summary: 'validate the presets and write the Open OnDemand app',
    usage: 'ood-jupyter build [--presets DIR] [--out DIR] [--check]',
    details: [
      `  --presets DIR  preset directory: site.yml, partitions/*.yml, containers/*.yml (default: ${bundledPresets})`,
      `  --out DIR      where the app is written; replaced as a whole, only after everything`,
      `                 validated and rendered (default: ${defaultOut})`,
      '  --check        write nothing; list the files a build would change, exit 1 if there are any',
      '                 (for a staff CI job: is the deployed app what the presets say?)',
    ].join('\n'),
    options: { ...presetsOption, out: { type: 'string', default: defaultOut }, check: { type: 'boolean' } },
    async run({ presets, out, check }) {
      if (check) {
        const changes = await compareApp(String(out), await renderFromPresets(String(presets)));
        if (changes.length === 0) {
          console.log(`${out}/ is up to date with ${presets}.`);
          return 0;
        }
        for (const c of changes) console.log(`  ${c.kind.padEnd(7)} ${c.path}${c.detail ? ` (${c.detail})` : ''}`);
        console.log(`${out}/ is out of date: ${changes.length} change(s); run ood-jupyter diff --out ${out} to see them.`);
        return 1;
      }
      const files = await buildApp(String(presets), String(out));
      console.log(`Wrote ${files.length} files to ${out}/ (${files.map((f) => f.path).join(', ')})`);
      return 0;
    },
  },
  validate: {
    summary: 'check the presets and report every problem as FILE:LINE field: message',
    usage: 'ood-jupyter validate [--presets DIR] [--json]',
    details: `  --presets DIR  preset directory (default: ${bundledPresets})\n  --json         print {"ok": …, "problems": [{file, line, field, message}]} instead`,
    options: { ...presetsOption, json: { type: 'boolean' } },
    async run({ presets, json }) {
      if (json) {
        try {
          const valid = await checkPresets(String(presets));
          console.log(JSON.stringify({ ok: true, partitions: valid.partitions.map((p) => p.name), containers: valid.containers.map((c) => c.name), problems: [] }, null, 2));
          return 0;
        } catch (error) {
          if (!(error instanceof PresetError)) throw error;
          console.log(JSON.stringify({ ok: false, problems: error.problems }, null, 2));
          return 1;
        }
      }
      const valid = await checkPresets(String(presets));
      console.log(`${presets}: OK — ${valid.partitions.length} partitions (${valid.partitions.map((p) => p.name).join(', ')}), `
        + `${valid.containers.length} containers (${valid.containers.map((c) => c.name).join(', ')})`);
      return 0;
    },
  },
  preview: {
    summary: 'show what a launch with these form values would submit: sbatch arguments and the container command line',
    usage: 'ood-jupyter preview --partition P [--set ID=VALUE]... [--json] [--presets DIR]',
    details: [
      '  --partition P  the partition chosen in the form; the other fields start at its defaults',
      '  --set ID=VALUE a form field as the researcher would fill it, e.g. --set num_gpus=2',
      '                 --set container=pytorch --set working_dir=/scratch/me (repeat as needed)',
      '  --json         print the result as one JSON object',
      `  --presets DIR  preset directory (default: ${bundledPresets})`,
      '',
      '  submit.yml.erb and template/settings.sh.erb are rendered with real Ruby (the `ruby` on PATH),',
      '  as the dashboard renders them; a value the app refuses prints the researcher\'s message and',
      '  exits 1. The command line comes from the job\'s own library; binds are checked on this machine.',
    ].join('\n'),
    options: { ...presetsOption, partition: { type: 'string' }, set: { type: 'string', multiple: true }, json: { type: 'boolean' } },
    async run(values) {
      if (typeof values.partition !== 'string') throw new RequestError('--partition is required');
      const plan = await planFromPresets(String(values.presets));
      const result = await preview(await renderApp(plan), formValues(plan, values.partition, (values.set as string[] | undefined) ?? []));
      if (values.json) {
        console.log(JSON.stringify(result, null, 2));
      } else if (result.refused !== undefined) {
        console.log(`The form would refuse this launch: ${result.refused}`);
      } else {
        console.log(`sbatch ${result.sbatch!.join(' ')}`);
        console.log('  (OOD adds -J, -o output.log, --export and --parsable, -A for the account chosen, and the job script)');
        for (const line of result.setup ?? []) console.log(`set-up: ${line}`);
        console.log(`container: ${result.command}`);
        if (result.missingBinds?.length) console.log(`  (not bound: missing on this machine: ${result.missingBinds.join(', ')})`);
        if (/ (docker|oras):\/\//.test(result.command ?? '')) console.log('  (the job runs the image\'s cached .sif, pulled once by digest)');
      }
      return result.refused === undefined ? 0 : 1;
    },
  },
  'batch-script': {
    summary: 'print an sbatch script that runs a command in the environment of a notebook session',
    usage: 'ood-jupyter batch-script --partition P --container C [--gpus N] [--mem GB] [--hours H] [--cores N] [--account A] [--workdir DIR] [--presets DIR] -- COMMAND...',
    details: [
      '  --partition P  the partition preset (as in the form)',
      '  --container C  the container preset',
      '  --gpus N, --mem GB, --hours H, --cores N',
      '                 the request; each within the partition\'s limits (default: the partition\'s defaults)',
      '  --account A    the Slurm account',
      '  --workdir DIR  the working directory (default: where sbatch is run)',
      `  --presets DIR  preset directory (default: ${bundledPresets})`,
      '  -- COMMAND...  what the job runs inside the container, e.g. -- python train.py',
      '',
      '  The script runs COMMAND with the same image (pulled once), binds, --nv, package directory and',
      '  PYTHONPATH as the notebook kernel of a session with these values. Submit it: sbatch job.sh',
    ].join('\n'),
    options: {
      ...presetsOption, partition: { type: 'string' }, container: { type: 'string' }, gpus: { type: 'string' }, mem: { type: 'string' },
      hours: { type: 'string' }, cores: { type: 'string' }, account: { type: 'string' }, workdir: { type: 'string' },
    },
    positionals: true,
    async run(values, command) {
      if (typeof values.partition !== 'string' || typeof values.container !== 'string') {
        throw new RequestError('--partition and --container are required');
      }
      const plan = await planFromPresets(String(values.presets));
      const script = batchScript(plan, await renderApp(plan), {
        partition: values.partition, container: values.container,
        gpus: wholeNumber('gpus', values.gpus), memoryGb: wholeNumber('mem', values.mem), hours: wholeNumber('hours', values.hours),
        cores: wholeNumber('cores', values.cores), account: values.account as string | undefined, workingDir: values.workdir as string | undefined,
        command,
      });
      process.stdout.write(script);
      return 0;
    },
  },
  docs: {
    summary: 'write the researchers\' page for these presets, as Markdown and HTML',
    usage: 'ood-jupyter docs --out FILE [--presets DIR]',
    details: [
      '  --out FILE     FILE.md and FILE.html are written (a .md or .html ending is dropped first)',
      `  --presets DIR  preset directory (default: ${bundledPresets})`,
      '',
      '  The page lists the partitions with their limits and GPU types, the containers, own images,',
      '  kernels and package directories, the batch-script command and a launch link per partition.',
    ].join('\n'),
    options: { ...presetsOption, out: { type: 'string' } },
    async run({ presets, out }) {
      if (typeof out !== 'string' || out === '') throw new RequestError('--out FILE is required');
      const plan = await planFromPresets(String(presets));
      const base = out.replace(/\.(md|html)$/, '');
      await mkdir(dirname(base), { recursive: true });
      await writeFile(`${base}.md`, docsMarkdown(plan));
      await writeFile(`${base}.html`, docsHtml(plan));
      console.log(`Wrote ${base}.md and ${base}.html`);
      return 0;
    },
  },
  doctor: {
    summary: 'check every claim of the presets against the real cluster: runtime, images, partitions, OOD cluster, portal',
    usage: 'ood-jupyter doctor [--presets DIR] [--run-with CMD] [--clusters-dir DIR] [--json]',
    details: [
      `  --presets DIR       preset directory (default: ${bundledPresets})`,
      '  --run-with CMD      run the cluster checks through CMD, e.g. "ssh login01" (default: here)',
      '  --clusters-dir DIR  OOD\'s cluster files (default: /etc/ood/config/clusters.d)',
      '  --json              print the findings as JSON',
      '',
      '  Checks: the runtime after the site\'s set-up lines and its version; every image exists, is',
      '  readable and has what its preset says (the sessions\' own probe, run with the runtime); every',
      '  partition exists in Slurm and sbatch --test-only accepts its largest request; the OOD cluster',
      '  id has its file; the portal origins are set. Exit status 1 when anything fails.',
    ].join('\n'),
    options: { ...presetsOption, 'run-with': { type: 'string' }, 'clusters-dir': { type: 'string', default: '/etc/ood/config/clusters.d' }, json: { type: 'boolean' } },
    async run(values) {
      const plan = await planFromPresets(String(values.presets));
      const findings = await runDoctor(plan, await renderApp(plan), {
        runWith: values['run-with'] as string | undefined, clustersDir: String(values['clusters-dir']),
      });
      if (values.json) console.log(JSON.stringify(findings, null, 2));
      else console.log(doctorTable(findings, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR));
      const failed = findings.filter((f) => f.status === 'fail').length;
      if (!values.json) console.log(failed ? `${failed} check(s) failed.` : 'Everything the presets claim holds.');
      return failed ? 1 : 0;
    },
  },
  diff: {
    summary: 'show, as a unified diff, what a rebuild would change in an app already written or deployed',
    usage: 'ood-jupyter diff --out DIR [--presets DIR] [--json]',
    details: [
      '  --out DIR      the app to compare with (a build\'s --out, or a deploy\'s --to)',
      `  --presets DIR  preset directory (default: ${bundledPresets})`,
      '  --json         print the changes as JSON: [{path, kind, diff, detail}]',
      '',
      '  Exit status: 0 when DIR is up to date, 1 when a rebuild would change it.',
    ].join('\n'),
    options: { ...presetsOption, out: { type: 'string' }, json: { type: 'boolean' } },
    async run({ presets, out, json }) {
      if (typeof out !== 'string' || out === '') throw new RequestError('--out DIR is required');
      const changes: Change[] = await compareApp(out, await renderFromPresets(String(presets)));
      if (json) {
        console.log(JSON.stringify(changes, null, 2));
        return changes.length === 0 ? 0 : 1;
      }
      for (const c of changes) process.stdout.write(c.kind === 'mode' ? `${c.path}: ${c.detail}\n` : c.diff);
      if (changes.length === 0) console.error(`${out}/ is up to date with ${presets}.`);
      return changes.length === 0 ? 0 : 1;
    },
  },
  deploy: {
    summary: 'install the app at DIR atomically, keeping the version it replaces for rollback',
    usage: 'ood-jupyter deploy --to DIR [--presets DIR]',
    details: [
      '  --to DIR       the app directory OOD serves, e.g. /var/www/ood/apps/sys/jupyter-apptainer',
      `  --presets DIR  preset directory (default: ${bundledPresets})`,
      '',
      '  DIR becomes a symbolic link to a complete version in .NAME.versions/ beside it (hidden: the',
      '  dashboard lists no app there), switched with one rename: a deploy stopped at any step leaves',
      '  the app that was there working. The last versions are kept; see ood-jupyter rollback.',
    ].join('\n'),
    options: { ...presetsOption, to: { type: 'string' } },
    async run({ presets, to }) {
      if (typeof to !== 'string' || to === '') throw new RequestError('--to DIR is required');
      const result = await deployApp(to.replace(/\/+$/, ''), await renderFromPresets(String(presets)));
      if (result.unchanged) console.log(`${to} is already this version (${result.version}); nothing changed.`);
      else console.log(`Deployed ${result.version} to ${to}${result.previous ? `; the version before is kept (${result.previous}): ood-jupyter rollback --to ${to}` : ''}.`);
      return 0;
    },
  },
  rollback: {
    summary: 'put back the version of the app that was live before the last deploy',
    usage: 'ood-jupyter rollback --to DIR',
    details: '  --to DIR       the app directory a deploy wrote (a link into .NAME.versions/)',
    options: { to: { type: 'string' } },
    async run({ to }) {
      if (typeof to !== 'string' || to === '') throw new RequestError('--to DIR is required');
      const { from, to: version } = await rollbackApp(to.replace(/\/+$/, ''));
      console.log(`Rolled ${to} back from ${from} to ${version}.`);
      return 0;
    },
  },
  schema: {
    summary: 'write the JSON Schema of each preset file, for editors that validate and complete YAML',
    usage: 'ood-jupyter schema [--out DIR]',
    details: [
      '  --out DIR      where site.schema.json, partition.schema.json and container.schema.json are',
      '                 written (default: ./schema)',
      '',
      '  A preset file whose first line is, for example,',
      `    ${'# yaml-language-server: $schema=' + presetKinds.partition.fromPreset}`,
      '  is checked and completed while typing by editors with a YAML language server (VS Code\'s',
      '  YAML extension, Neovim, Emacs). `ood-jupyter validate` still has the last word.',
    ].join('\n'),
    options: { out: { type: 'string', default: 'schema' } },
    async run({ out }) {
      await mkdir(String(out), { recursive: true });
      const files = jsonSchemaFiles();
      for (const { file, content } of files) await writeFile(`${String(out)}/${file}`, content);
      console.log(`Wrote ${files.map((f) => `${String(out)}/${f.file}`).join(', ')}`);
      return 0;
    },
  },
  pull: {
    summary: 'pull the presets\' docker:// and oras:// images into the image cache, as a session would (run on a login node)',
    usage: 'ood-jupyter pull [--presets DIR]',
    details: [
      `  --presets DIR  preset directory (default: ${bundledPresets})`,
      '',
      '  Each image is pulled once, by digest, into site.yml images.cacheDir (else your own',
      '  ~/.cache/ood-jupyter/images), with the same lock and cache the sessions use: sessions',
      '  on compute nodes without network then find it there.',
    ].join('\n'),
    options: presetsOption,
    async run({ presets }) {
      const plan = await planFromPresets(String(presets));
      const { script, images } = pullProgram(plan, await renderApp(plan));
      if (images.length === 0) {
        console.log('ood-jupyter pull: no container preset names a docker:// or oras:// image; nothing to pull.');
        return 0;
      }
      const result = await execa('bash', ['--norc', '--noprofile', '-c', script], { stdio: 'inherit', reject: false });
      return result.exitCode === 0 ? 0 : 1;
    },
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    `${generator.name} ${generator.version}: generate an Open OnDemand JupyterLab-in-Apptainer app from per-partition presets`,
    '',
    'Usage: ood-jupyter <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `ood-jupyter <command> --help` for a command\'s options.',
  ].join('\n');
}

const commandHelp = (name: string, c: Command) => `Usage: ${c.usage}\n\n${name}: ${c.summary}\n\n${c.details}\n  --help         show this help`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    console.log(generator.version);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`ood-jupyter: unknown command "${name}" (commands: ${Object.keys(commands).join(', ')}; see ood-jupyter --help)`);
    return 2;
  }
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: command.positionals ?? false }));
  } catch (error) {
    console.error(`ood-jupyter ${name}: ${(error as Error).message.split('\n')[0]} (usage: ${command.usage})`);
    return 2;
  }
  if (values.help) {
    console.log(commandHelp(name, command));
    return 0;
  }
  try {
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof PresetError) {
      for (const problem of error.problems) console.error(formatProblem(problem));
      const count = `${error.problems.length} problem${error.problems.length === 1 ? '' : 's'} in the presets`;
      console.error(`ood-jupyter ${name}: ${count}${name === 'build' ? '; nothing was written' : ''}.`);
      return 1;
    }
    if (error instanceof RequestError) {
      console.error(`ood-jupyter ${name}: ${error.message}`);
      return 2;
    }
    console.error(`ood-jupyter ${name}: ${(error as Error).message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
