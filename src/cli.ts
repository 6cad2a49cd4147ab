#!/usr/bin/env node
// The `ood-jupyter` command. One table below defines every command: its options, help and action.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { buildApp, checkPresets, generator } from './build.js';
import { formatProblem, PresetError } from './presets/problems.js';

const bundledPresets = relative(process.cwd(), fileURLToPath(new URL('../form-presets/', import.meta.url))) || '.';
const defaultOut = 'build/jupyter-apptainer';

interface Command {
  summary: string;
  usage: string;
  details: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>): Promise<number>;
}

const presetsOption = { presets: { type: 'string', default: bundledPresets } } as const;

const commands: Record<string, Command> = {
  build: {
    summary: 'validate the presets and write the Open OnDemand app',
    usage: 'ood-jupyter build [--presets DIR] [--out DIR]',
    details: [
      `  --presets DIR  preset directory: site.yml, partitions/*.yml, containers/*.yml (default: ${bundledPresets})`,
      `  --out DIR      where the app is written; replaced as a whole, only after everything`,
      `                 validated and rendered (default: ${defaultOut})`,
    ].join('\n'),
    options: { ...presetsOption, out: { type: 'string', default: defaultOut } },
    async run({ presets, out }) {
      const files = await buildApp(String(presets), String(out));
      console.log(`Wrote ${files.length} files to ${out}/ (${files.map((f) => f.path).join(', ')})`);
      return 0;
    },
  },
  validate: {
    summary: 'check the presets and report every problem as FILE:LINE field: message',
    usage: 'ood-jupyter validate [--presets DIR]',
    details: `  --presets DIR  preset directory (default: ${bundledPresets})`,
    options: presetsOption,
    async run({ presets }) {
      const valid = await checkPresets(String(presets));
      console.log(`${presets}: OK — ${valid.partitions.length} partitions (${valid.partitions.map((p) => p.name).join(', ')}), `
        + `${valid.containers.length} containers (${valid.containers.map((c) => c.name).join(', ')})`);
      return 0;
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
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    console.error(`ood-jupyter ${name}: ${(error as Error).message.split('\n')[0]} (usage: ${command.usage})`);
    return 2;
  }
  if (values.help) {
    console.log(commandHelp(name, command));
    return 0;
  }
  try {
    return await command.run(values as Record<string, string | boolean | undefined>);
  } catch (error) {
    if (error instanceof PresetError) {
      for (const problem of error.problems) console.error(formatProblem(problem));
      const count = `${error.problems.length} problem${error.problems.length === 1 ? '' : 's'} in the presets`;
      console.error(`ood-jupyter ${name}: ${count}${name === 'build' ? '; nothing was written' : ''}.`);
      return 1;
    }
    console.error(`ood-jupyter ${name}: ${(error as Error).message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
