// `ood-jupyter preview`: what a launch with these form values would submit, before anything is
// deployed. The app's own submit.yml.erb and template/settings.sh.erb are rendered with real Ruby, as
// the dashboard renders them (every form field a method returning a String); the script: keys become
// the sbatch arguments as ood_core's Slurm adapter writes them; and the job's own library
// (jupyter-session.sh, in real bash) assembles the container command line from settings.sh.
import { execa } from 'execa';
import type { AppPlan } from './plan.js';
import { ATTRIBUTE_IDS } from './plan.js';
import type { RenderedFile } from './render/render.js';
import { RequestError } from './render/job-scripts.js';
import { bashWord } from './render/quote.js';

const RENDER = String.raw`
require "erb"
require "json"
require "yaml"
require "shellwords"
verbose, $VERBOSE = $VERBOSE, nil
require "ostruct"
$VERBOSE = verbose
input = JSON.parse($stdin.read)
context = OpenStruct.new(input["values"])
begin
  submit = ERB.new(input["submit"], trim_mode: "-").result(context.instance_eval { binding })
rescue StandardError => e
  puts JSON.generate({ "refused" => e.message })
  exit 0
end
settings = ERB.new(input["settings"], trim_mode: "-").result(OpenStruct.new(context: context).instance_eval { binding })
puts JSON.generate({ "script" => YAML.safe_load(submit)["script"], "settings" => settings })
`;

export interface Preview {
  values: Record<string, string>;
  /** The sentence the dashboard would show on the form instead of submitting, if any. */
  refused?: string;
  /** sbatch's arguments from submit.yml.erb (OOD adds -J, -o, --export and --parsable of its own). */
  sbatch?: string[];
  /** The container command line script.sh would run, as bash would print it quoted. */
  command?: string;
  /** Set-up lines the job runs first (site, container, GPU). */
  setup?: string[];
  /** Binds left out because their host path is missing here (the job leaves them out where it is missing too). */
  missingBinds?: string[];
}

/** The form's values for PARTITION: its defaults, then each --set id=value. */
export function formValues(plan: AppPlan, partitionName: string, sets: string[]): Record<string, string> {
  const partition = plan.partitions.find((p) => p.name === partitionName);
  if (!partition) throw new RequestError(`no partition "${partitionName}" (partitions: ${plan.partitions.map((p) => p.name).join(', ')})`);
  const values: Record<string, string> = {
    [ATTRIBUTE_IDS.cluster]: partition.cluster, [ATTRIBUTE_IDS.partition]: partition.name, [ATTRIBUTE_IDS.container]: partition.defaultContainer,
    [ATTRIBUTE_IDS.customImage]: '', [ATTRIBUTE_IDS.gpus]: String(partition.gpus.default), [ATTRIBUTE_IDS.cores]: String(partition.cores.default),
    [ATTRIBUTE_IDS.memory]: String(partition.memoryGb.default), [ATTRIBUTE_IDS.hours]: String(partition.hours.default),
    [ATTRIBUTE_IDS.workingDir]: '', [ATTRIBUTE_IDS.extraBinds]: '',
  };
  // The dashboard preselects the first of the researcher's accounts (auto_accounts): a stand-in here,
  // which OOD itself turns into -A. A text account field starts empty (the default account).
  if (plan.accountAttribute) values[plan.accountAttribute] = plan.accountAttribute === 'auto_accounts' ? 'ACCOUNT' : '';
  for (const set of sets) {
    const at = set.indexOf('=');
    const id = set.slice(0, at);
    if (at < 1 || !(id in values)) throw new RequestError(`--set takes id=value with a form field id (${Object.keys(values).join(', ')}); got "${set}"`);
    values[id] = set.slice(at + 1);
  }
  return values;
}

const duration = (seconds: number) => [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60].map((n) => String(n).padStart(2, '0')).join(':');

export async function preview(files: RenderedFile[], values: Record<string, string>): Promise<Preview> {
  const file = (path: string) => files.find((f) => f.path === path)!.content;
  // The OOD host's Ruby: `ruby` on PATH, or the binary OOD_JUPYTER_RUBY names.
  const ruby = await execa(process.env.OOD_JUPYTER_RUBY?.trim() || 'ruby', ['-e', RENDER], {
    input: JSON.stringify({ values, submit: file('submit.yml.erb'), settings: file('template/settings.sh.erb') }), reject: false,
  });
  if (ruby.exitCode !== 0) {
    throw new Error(ruby.exitCode === undefined ? 'preview needs Ruby (the OOD host has it): ruby was not found' : `ruby: ${ruby.stderr.trim().split('\n').at(-1)}`);
  }
  const rendered = JSON.parse(ruby.stdout) as { refused?: string; script?: Record<string, unknown>; settings?: string };
  if (rendered.refused !== undefined) return { values, refused: rendered.refused };
  const script = rendered.script ?? {};
  // The keys this app's submit.yml.erb sets, in the order ood_core's Slurm adapter writes them.
  const sbatch = [
    ...(script.queue_name !== undefined ? ['-p', String(script.queue_name)] : []),
    ...(script.accounting_id !== undefined ? ['-A', String(script.accounting_id)] : []),
    ...(script.wall_time !== undefined ? ['-t', duration(Number(script.wall_time))] : []),
    ...((script.native as string[] | undefined) ?? []).map(String),
  ];
  // The job's own functions, in real bash, with the rendered settings.sh: the runtime's arguments
  // (--nv, the binds that exist here, the working directory) and the image.
  const bash = await execa('bash', ['--norc', '--noprofile', '-s'], { reject: false, input: `${file('template/messages.sh')}
${rendered.settings}
${file('template/jupyter-session.sh')}
clean_up() { exit "\${1:-0}"; }
assemble_runtime_args
[[ -n $working_dir ]] && bind_working_dir "$working_dir"
printf '%s\\0' "\${site_setup[@]}" "\${container_setup[@]}" ; printf '\\n'
((gpu_count > 0)) && printf '%s\\0' "\${container_gpu_setup[@]}"; printf '\\n'
jupyterlab_command "$image" SESSION_DIR/jupyter/config/jupyter_server_config.py
printf '%s\\0' "\${jupyterlab_argv[@]}"; printf '\\n'
for path in "\${site_binds[@]}" "\${container_binds[@]}"; do [[ -e \${path%%:*} ]] || printf '%s\\0' "$path"; done
` });
  if (bash.exitCode !== 0) throw new Error(`the job's library: ${(bash.stdout.trim() || bash.stderr.trim()).split('\n').at(-1)}`);
  const [setup = '', gpuSetup = '', command = '', missing = ''] = bash.stdout.split('\n');
  return {
    values, sbatch, command: command.split('\0').filter(Boolean).map(bashWord).join(' '),
    setup: [...setup.split('\0'), ...gpuSetup.split('\0')].filter(Boolean),
    missingBinds: missing.split('\0').filter(Boolean),
  };
}
