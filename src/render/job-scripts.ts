// Bash programs made from the app's own job library, outside a session: the sbatch script of
// `ood-jupyter batch-script` (a batch job in the environment of a notebook session) and the program
// `ood-jupyter pull` runs on a login node (the curated registry images pulled into the site cache).
// Both are the rendered messages.sh and jupyter-session.sh, verbatim, after the same data
// settings.sh holds for a session, written here from the plan instead of by ERB.
import type { AppPlan } from '../plan.js';
import type { ValidContainer, ValidPartition } from '../presets/validate.js';
import { submitMessages } from '../messages.js';
import type { RenderedFile } from './render.js';
import { bashWord } from './quote.js';

export interface BatchRequest {
  partition: string;
  container: string;
  gpus?: number;
  memoryGb?: number;
  hours?: number;
  cores?: number;
  account?: string;
  workingDir?: string;
  command: string[];
}

/** A request the presets do not allow, in the words submit.yml.erb uses for the form. */
export class RequestError extends Error {}

const say = (key: keyof typeof submitMessages, details: Record<string, string | number>) =>
  new RequestError(submitMessages[key].replace(/%\{(\w+)\}/g, (_, name: string) => String(details[name] ?? '')));

const file = (files: RenderedFile[], path: string) => {
  const found = files.find((f) => f.path === path);
  if (!found) throw new Error(`the rendered app has no ${path}`);
  return found.content;
};

/** One comment line, whatever the text holds (a command's newlines would end the comment). */
const comment = (text: string) => `# ${text.replace(/[\r\n]+/g, ' ⏎ ')}`;

const array = (values: string[]) => `(${values.map(bashWord).join(' ')})`;

/** settings.sh's site part, from the plan. */
function siteSettings(plan: AppPlan): string[] {
  const site = plan.site;
  return [
    `runtime=${bashWord(site.runtime.command)}`,
    `site_setup=${array(site.runtime.setup)}`,
    `site_binds=${array(site.binds)}`,
    `image_cache_dir=${bashWord(site.images.cacheDir ?? '')}`,
    `overlays_dir=${bashWord(site.python.overlays ?? '')}`,
    `user_install=${site.python.userInstall ? 1 : 0}`,
    `hide_host_user_site=${site.python.hideHostUserSite ? 1 : 0}`,
    `env_search_dirs=${array(site.python.environments)}`,
  ];
}

/** settings.sh's container part. */
function containerSettings(c: ValidContainer): string[] {
  return [
    `container=${bashWord(c.name)}`,
    `image=${bashWord(c.image)}`,
    `image_slug=${bashWord(c.name)}`,
    `container_env=${array(Object.entries(c.env).map(([k, v]) => `${k}=${v}`))}`,
    `container_binds=${array(c.binds)}`,
    `container_setup=${array(c.setup)}`,
    `container_gpu_setup=${array(c.gpuSetup)}`,
  ];
}

function within(field: string, partition: ValidPartition, value: number | undefined, bounds: { min: number; max: number; default: number }): number {
  const chosen = value ?? bounds.default;
  if (!Number.isInteger(chosen) || chosen < bounds.min || chosen > bounds.max) {
    throw say('outOfRange', { field, partition: partition.label, min: bounds.min, max: bounds.max, value: String(value) });
  }
  return chosen;
}

/** The #SBATCH lines OOD's submit.yml.erb would give a session with these values. */
export function sbatchLines(plan: AppPlan, partition: ValidPartition, request: BatchRequest): { lines: string[]; gpus: number } {
  if (partition.gpus.max === 0 && (request.gpus ?? 0) > 0) throw say('noGpusOnPartition', { partition: partition.label });
  const gpus = partition.gpus.max === 0 ? 0 : within('GPUs', partition, request.gpus, partition.gpus);
  const cores = within('CPU cores', partition, request.cores, partition.cores);
  if (partition.cores.maxPerGpu && gpus > 0 && cores > partition.cores.maxPerGpu * gpus) {
    throw say('tooManyCoresForGpus', { gpus, partition: partition.label, max: partition.cores.maxPerGpu * gpus, perGpu: partition.cores.maxPerGpu, value: cores });
  }
  const memory = within('Memory (GB)', partition, request.memoryGb, partition.memoryGb);
  const hours = within('Hours', partition, request.hours, partition.hours);
  const lines = [
    `--partition=${partition.name}`, `--time=${hours}:00:00`, '--nodes=1', '--ntasks=1',
    `--cpus-per-task=${cores}`, `--mem=${memory}G`,
  ];
  if (gpus > 0) {
    const spec = [partition.gpus.type, gpus].filter((x) => x !== null).join(':');
    lines.push(partition.gpus.request === 'gres' ? `--gres=gpu:${spec}` : `--gpus-per-node=${spec}`);
  }
  if (plan.site.clusters.length > 1) lines.push(`--clusters=${partition.cluster}`);
  if (request.account !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(request.account)) throw say('accountInvalid', { value: request.account });
    lines.push(`--account=${request.account}`);
  }
  lines.push(...partition.sbatchArgs);
  return { lines: lines.map((l) => `#SBATCH ${l}`), gpus };
}

/** The sbatch script for REQUEST: the session's container and environment, running its command. */
export function batchScript(plan: AppPlan, files: RenderedFile[], request: BatchRequest): string {
  const partition = plan.partitions.find((p) => p.name === request.partition);
  if (!partition) throw say('unknownPartition', { value: request.partition });
  const container = plan.containers.find((c) => c.name === request.container);
  if (!container) throw say('unknownContainer', { value: request.container });
  if (!partition.containers.includes(container.name)) {
    throw say('containerNotOnPartition', {
      container: container.label, partition: partition.label,
      allowed: partition.containers.map((n) => plan.containers.find((c) => c.name === n)?.label ?? n).join(', '),
    });
  }
  if (request.workingDir !== undefined && !/^\/[^\0-\x1f\x7f]*$/.test(request.workingDir)) throw say('workingDirInvalid', { value: request.workingDir });
  if (request.command.length === 0) throw new RequestError('give the command to run after "--", for example: -- python train.py');
  const { lines, gpus } = sbatchLines(plan, partition, request);
  return [
    '#!/bin/bash',
    comment(`Written by ${plan.generator.name} ${plan.generator.version} batch-script: ${request.command.map(bashWord).join(' ')}`),
    comment(`in the environment a JupyterLab session of "${container.label}" on the ${partition.label} partition gives its`),
    '# notebook kernel: the same image, binds, --nv and package directory. Submit it with sbatch.',
    ...lines,
    `#SBATCH --job-name=${(container.name + '-batch').slice(0, 60)}`,
    '',
    '# The data a session\'s settings.sh holds, for these values.',
    ...siteSettings(plan),
    ...containerSettings(container),
    `gpu_count=${gpus}`,
    `working_dir=${bashWord(request.workingDir ?? '')}`,
    "extra_binds=''",
    '# Failures are reported in the job\'s output, with no session directory to note them in.',
    'failure_note=/dev/null session_end_record=/dev/null',
    '',
    '# The app\'s messages (template/messages.sh), verbatim.',
    file(files, 'template/messages.sh').replace(/^# shellcheck shell=bash.*\n/m, ''),
    '# The app\'s job library (template/jupyter-session.sh), verbatim.',
    file(files, 'template/jupyter-session.sh').replace(/^# shellcheck shell=bash\n/m, ''),
    '# The probe the library runs in the image (template/inspect-python.py).',
    "inspect_python_code=$(cat <<'PYTHON'",
    file(files, 'template/inspect-python.py').trimEnd(),
    'PYTHON',
    ')',
    '',
    `run_batch_command ${request.command.map(bashWord).join(' ')}`,
    '',
  ].join('\n');
}

/** What the staff programs (pull, doctor) start with: the site's settings, no session directory to
 * note failures in, no container chosen yet, the app's messages and its job library. */
function staffPrologue(plan: AppPlan, files: RenderedFile[]): string[] {
  return [
    ...siteSettings(plan),
    'failure_note=/dev/null session_end_record=/dev/null',
    "gpu_count=0 extra_binds='' container_binds=() container_env=() container_setup=() container_gpu_setup=()",
    file(files, 'template/messages.sh'),
    file(files, 'template/jupyter-session.sh'),
  ];
}

/** The program `ood-jupyter pull` runs: each curated docker:// or oras:// image into the image cache. */
export function pullProgram(plan: AppPlan, files: RenderedFile[]): { script: string; images: string[] } {
  const images = plan.containers.filter((c) => /^(docker|oras):\/\//.test(c.image));
  const script = [
    ...staffPrologue(plan, files),
    '# Staff fill the site cache (images.cacheDir) when there is one; else their own, as a session would.',
    '[[ -n $image_cache_dir ]] && only_site_cache=1 && { (umask 022 && mkdir -p -- "$image_cache_dir") || fail "$msg_cache_unwritable" "$image_cache_dir"; }',
    'run_site_setup "${site_setup[@]}"',
    'command -v "$runtime" >/dev/null 2>&1 || fail "$msg_runtime_missing" "$runtime" "$(hostname)"',
    'status=0',
    ...images.map((c) => `( image_ref=${bashWord(c.image)}; resolve_image "$image_ref"; printf 'ood-jupyter: %s: %s is %s\\n' ${bashWord(c.name)} "$image_ref" "$image_path" ) || status=1`),
    'exit "$status"',
    '',
  ].join('\n');
  return { script, images: images.map((c) => c.image) };
}

/** A partition's largest request: every limit at its maximum (cores within the per-GPU share). */
export function largestRequest(plan: AppPlan, partition: ValidPartition): string[] {
  const gpus = partition.gpus.max;
  const cores = partition.cores.maxPerGpu && gpus > 0 ? Math.min(partition.cores.max, partition.cores.maxPerGpu * gpus) : partition.cores.max;
  return sbatchLines(plan, partition, {
    partition: partition.name, container: '', gpus, cores, memoryGb: partition.memoryGb.max, hours: partition.hours.max, command: [],
  }).lines.map((line) => line.replace(/^#SBATCH /, ''));
}

/**
 * The program `ood-jupyter doctor` runs where the cluster is (here, or through --run-with): the
 * runtime after the site's set-up, each container image probed with the runtime (the sessions' own
 * probe), each partition asked of Slurm with its largest request (sbatch --test-only). It prints one
 * line per check: STATUS TAB CHECK TAB REASON.
 */
export function doctorProgram(plan: AppPlan, files: RenderedFile[]): string {
  const image = (c: ValidContainer) => [
    `( name=${bashWord(c.name)} image=${bashWord(c.image)} claims=${c.jupyterlab ? 1 : 0}`,
    ...containerSettings(c).map((line) => `  ${line}`),
    '  doctor_image',
    ')',
  ].join('\n');
  const partition = (p: ValidPartition) =>
    `( doctor_partition ${bashWord(p.name)} ${largestRequest(plan, p).map(bashWord).join(' ')} )`;
  return [
    ...staffPrologue(plan, files),
    "inspect_python_code=$(cat <<'PYTHON'",
    file(files, 'template/inspect-python.py').trimEnd(),
    'PYTHON',
    ')',
    `
check() { printf '%s	%s	%s
' "$1" "$2" "$3"; }
# A library failure (set-up line, missing image) becomes this check's line.
fail() { local format=$1; shift; check fail "$current" "$(printf "$format" "$@" | sed 's/^ood-jupyter: ERROR: //')"; exit 1; }

# The site's set-up lines first, as a job runs them; one that fails ends the check here.
current="site set-up"
run_site_setup "\${site_setup[@]}" >/dev/null 2>&1
current="runtime $runtime"
if ! command -v "$runtime" >/dev/null 2>&1; then
  check fail "$current" "not found after the site set-up lines (\${#site_setup[@]}): sessions cannot start"
  runtime_missing=1
else
  check ok "$current" "$("$runtime" --version 2>&1 | head -n 1)"
  runtime_missing=0
fi

# A directory whose contents every session trusts (the site image cache, the overlays): it and every
# directory above it closed to researchers, and nothing in it (down to DEPTH levels) that group or
# others can write or that belongs to another account.
doctor_closed_dir() {
  local dir=$1 depth=$2 what=$3 open
  current="$what $dir"
  if [[ ! -d $dir ]]; then
    check warn "$current" "does not exist here"
  elif ! closed_path "$dir" '' strict; then
    check fail "$current" "$closed_why: researchers could put files in it that every session trusts. Make it and the directories above it owned by root or the staff account that fills it, writable by that owner alone (chmod 0755 $dir)"
  elif open=$(find -L "$dir" -mindepth 1 -maxdepth "$depth" ! -xtype l \\( -perm /022 -o ! -uid "$closed_owner" \\) -print -quit 2>/dev/null) && [[ -n $open ]]; then
    check fail "$current" "$open in it can be changed by others or belongs to another account: make everything in it owned by uid $closed_owner and writable by that owner alone (chmod -R go-w $dir)"
  else
    check ok "$current" "only $(id -nu "$closed_owner" 2>/dev/null || printf 'uid %s' "$closed_owner") (uid $closed_owner) can change it (mode $(stat -c %a -- "$dir")): make sure that is a staff account"
  fi
}
[[ -n $image_cache_dir ]] && doctor_closed_dir "$image_cache_dir" 2 "image cache"
[[ -n $overlays_dir ]] && doctor_closed_dir "$overlays_dir" 64 "overlays"

doctor_image() {
  current="image $name ($image)"
  case $image in
    docker://* | oras://*)
      check warn "$current" "a registry image: sessions pull it by digest; not pulled here (ood-jupyter pull fills the site cache)"
      return 0 ;;
  esac
  if [[ ! -f $image || ! -r $image ]]; then
    check fail "$current" "does not exist or cannot be read here"
    return 0
  fi
  ((runtime_missing)) && { check warn "$current" "not probed: no runtime"; return 0; }
  image_path=$image runtime_args=()
  local report
  report=$(inspect_python probe 2>&1)
  read_probe "$report"
  if [[ -z $py_version ]]; then
    check fail "$current" "python3 does not run in it with $runtime: $(printf '%s
' "$report" | tail -n 1)"
  elif jupyter_usable; then
    check ok "$current" "Python $py_version, Jupyter Server $py_server, JupyterLab $py_lab, ipykernel $py_kernel"
  elif ((claims)); then
    check fail "$current" "its preset says jupyterlab: true, but it lacks $(missing_parts) for its Python $py_version"
  elif site_overlay "$py_minor" >/dev/null; then
    check ok "$current" "Python $py_version without JupyterLab: sessions use the site's overlay $(site_overlay "$py_minor")"
  elif ((user_install)); then
    check warn "$current" "Python $py_version lacks $(missing_parts): sessions install them per researcher (needs network on the compute nodes)"
  else
    check fail "$current" "Python $py_version lacks $(missing_parts), and the site has no overlay for Python $py_minor and no per-user install"
  fi
}

doctor_partition() {
  local name=$1 out
  shift
  current="partition $name"
  if ! command -v sbatch >/dev/null 2>&1; then
    check fail "$current" "sbatch is not on PATH here: run the doctor where Slurm's commands are (--run-with)"
    return 0
  fi
  if ! scontrol show partition "$name" -o >/dev/null 2>&1; then
    check fail "$current" "Slurm has no partition $name"
    return 0
  fi
  if out=$(sbatch --test-only "$@" --wrap=true 2>&1); then
    check ok "$current" "Slurm accepts its largest request ($*)"
  else
    check fail "$current" "Slurm refuses its largest request ($*): $(printf '%s
' "$out" | tail -n 1 | sed 's/^sbatch: error: //')"
  fi
}
`,
    ...plan.containers.map(image),
    ...plan.partitions.map(partition),
    '',
  ].join('\n');
}
