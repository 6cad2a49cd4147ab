// Every sentence a researcher may read about a failed launch, in one place.
//
// `submit` messages are raised by submit.yml.erb: the dashboard shows them on the form and submits
// nothing. They are Ruby format strings (`%{name}` placeholders). `job` messages are printed by the
// job's scripts into output.log (printf format strings, `%s` placeholders), each as one plain line
// saying what failed and what to do.

export const submitMessages = {
  unknownPartition: 'Please choose one of the listed partitions ("%{value}" is not one of them).',
  partitionNotOnCluster: 'The %{partition} partition is not on the %{cluster} cluster. Please choose a partition of that cluster.',
  notWholeNumber: '%{field} must be a whole number; you entered "%{value}".',
  outOfRange: '%{field} on the %{partition} partition must be between %{min} and %{max}; you asked for %{value}.',
  noGpusOnPartition: 'The %{partition} partition has no GPUs: set GPUs to 0, or choose a partition with GPUs.',
  tooManyCoresForGpus: 'With %{gpus} GPU(s) on the %{partition} partition you may use at most %{max} CPU cores (%{perGpu} per GPU); you asked for %{value}.',
  imageUnreadable: 'ood-jupyter: ERROR: the container image %s on %s cannot be read by you (its file permissions). Choose another container, or ask your support team to make the image readable.',
  imageNotSif: 'ood-jupyter: ERROR: the file %s is not a container image Apptainer can run (it has no SIF or SquashFS header; it may be incomplete). Choose another container, or ask your support team to check the image.',
  noGpuDriver: 'ood-jupyter: ERROR: GPUs were asked for, but node %s has no NVIDIA driver (no /proc/driver/nvidia/version, no nvidia-smi), so no program in the container could use them. Launch again (Slurm may choose another node) and tell your support team the node\'s name.',
  dirUnwritable: 'ood-jupyter: ERROR: cannot write to %s (%s). JupyterLab, its kernels and pip need to write there: free some space in your home directory (it, or its quota, may be full) or fix its permissions, and launch again.',
  unknownContainer: 'Please choose one of the listed containers ("%{value}" is not one of them).',
  containerNotOnPartition: 'The %{container} container is not offered on the %{partition} partition. Please choose one of: %{allowed}.',
  customImageNotAllowed: 'This site does not allow your own container images. Please choose one of the listed containers.',
  customImageMissing: 'Please enter your container image (%{where}), or choose one of the listed containers.',
  customImageOutside: 'Your own container image must be %{where}; "%{value}" is not.',
  workingDirInvalid: 'The working directory must be an absolute path (starting with /) without line breaks or control characters; "%{value}" is not.',
  extraBindInvalid: 'Each extra bind path must look like /host/path, /host/path:/container/path or /host/path:/container/path:ro, without spaces around it; "%{value}" does not.',
  accountMissing: 'Please choose one of your accounts.',
  accountInvalid: 'The account must start with a letter or digit and contain only letters, digits, "_", "." and "-"; "%{value}" does not.',
} as const;

/** A message with its `%{name}` placeholders filled in (the Ruby format strings' syntax). */
export const fill = (text: string, values: Record<string, string | number>): string =>
  text.replace(/%\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));

/**
 * The form (form.yml): each field's label and help as the researcher reads them. The dashboard
 * renders help as Markdown. `%{name}` placeholders, filled by src/render/form-text.ts.
 */
export const formText = {
  labels: {
    slurm_partition: 'Partition', container: 'Container', custom_image: 'Your own image', num_gpus: 'GPUs',
    num_cores: 'CPU cores', memory_gb: 'Memory (GB)', bc_num_hours: 'Hours', account: 'Account',
    working_dir: 'Working directory', extra_binds: 'Extra bind paths',
  },
  ownImageChoice: 'Your own image',
  partitionHelp: 'The Slurm partition your session runs on. Limits per session:',
  partitionLimits: '**%{label}** (`%{name}`): %{gpus}, %{cores} cores, %{memory} GB memory, %{hours} hours',
  partitionGpus: '%{min}–%{max}%{type} GPUs',
  partitionNoGpus: 'no GPUs',
  partitionIdle: '; a session ends by itself after %{minutes} minutes without activity',
  gpusOnPartition: '%{min}–%{max}%{type} GPUs per session on %{partition}.',
  containerHelp: 'The software environment JupyterLab runs in. The list shows the containers offered on the chosen partition.',
  containerHelpOwnImage: 'Choose "Your own image" to run an image of your own.',
  customImageHelp: 'Used only when Container is "Your own image". It needs `python3`; JupyterLab comes from the image, or from the site when the image has none. Allowed: %{allowed}.',
  customImagePath: 'a `.sif` file under `%{dir}/`',
  customImageRegistry: 'a `%{scheme}://` URI',
  gpusHelp: 'GPUs for this session (per node). The partition\'s limits are listed under Partition.',
  coresHelp: 'CPU cores for JupyterLab and your kernels.',
  memoryHelp: 'Memory for the whole session, in GB. A kernel that needs more is stopped by Slurm.',
  hoursHelp: 'How long the session may run. It ends when this time is up: save your work before.',
  accountHelp: 'The Slurm account the time is charged to.',
  accountHelpOptional: 'The Slurm account the time is charged to (leave empty for your default account).',
  workingDirHelp: 'The directory JupyterLab opens in. Leave empty for your home directory.',
  extraBindsHelp: 'More host directories to mount in the container, separated by commas, e.g. `/data/lab, /data/ref:/ref:ro`.',
  extraBindsMounted: 'Already mounted: your home directory, the working directory, %{binds}.',
  extraBindsMountedDefault: 'Your home directory and the working directory are already mounted.',
  connect: 'Connect to JupyterLab',
} as const;

/**
 * What form.js says on the form page: field names as submit.yml.erb names them in its sentences, and
 * the form's own notices (a launch link's values, a Launch that was stopped). `%{name}` placeholders.
 */
export const formMessages = {
  fieldLabels: formText.labels,
  linkUsed: 'Filled in from the link: %{fields}.',
  linkIgnored: 'Not used from the link: %{values}.',
  linkUnknownField: 'this form has no such field',
  linkNoBinds: 'extra bind paths are never taken from a link',
  launchBlocked: 'Nothing was launched: %{problem} Correct it and click Launch again.',
} as const;

/** The researchers' page `ood-jupyter docs` writes (Markdown with `code`, **bold** and <links>). */
export const docsText = {
  partitionsTitle: 'Partitions and their limits',
  partitionsIntro: 'Choose a partition in the form; its limits apply to one session. The form shows them and refuses values outside them before anything is submitted.',
  partitionsHead: ['Partition', 'GPUs', 'CPU cores', 'Memory', 'Time', 'Ends when idle for', 'Containers'],
  noGpus: 'none',
  never: 'never',
  containersTitle: 'Containers',
  containersHead: ['Container', 'What it has', 'Image', 'JupyterLab'],
  jupyterInImage: 'in the image',
  jupyterFromSite: 'added by the site when the session starts',
  ownTitle: 'Your own image',
  ownIntro: 'Choose "Your own image" in the Container list and enter one of these. It needs `python3`; if it has no JupyterLab, the session adds one where the site has it for that Python, or says in one line what is missing and leaves a definition file to build an image that has it.',
  ownPath: 'a `.sif` file under %{dir}',
  ownRegistry: 'a %{scheme} URI: pulled once, then reused until its tag moves',
  kernelsTitle: 'Kernels and your packages',
  kernelsItems: [
    '**Python 3 (the container)**: the image\'s own Python. `pip install` (in a notebook, `%pip install …`, or in a terminal) puts packages in your package directory for that image, `~/.local/share/ood-jupyter/packages/<container>-py3.X/`, and every later session and batch job of the image sees them.',
    'Packages in `~/.local` (made for the login nodes\' Python) are not used inside the container, so they cannot break it.',
    'Your own conda environments and venvs in `~/.conda/envs`, `~/miniforge3/envs`, `~/miniconda3/envs`, `~/micromamba/envs`, `~/venvs` or `~/.venvs` appear as kernels when they contain `ipykernel` and their Python runs in the container; they run inside the same container, with the same GPUs. Kernels an environment carries (such as R\'s IRkernel) appear too. The session\'s output.log names any environment it could not use, and why.',
  ],
  kernelsCode: '~/venvs/myenv/bin/python -m pip install ipykernel   # gives the venv ~/venvs/myenv a kernel',
  batchTitle: 'From notebook to batch job',
  batchIntro: 'To run a script in the same container, with the same packages and GPUs as your notebook, as a batch job (the session card shows this command for your session):',
  linksTitle: 'Launch links',
  linksIntro: 'These links open the form already filled in for a partition (edit the values in the link as you like; values that do not fit are named on the form):',
} as const;

/** The session card (info.md.erb): what the job itself reports (jupyter/card.json). Ruby format strings. */
export const cardMessages = {
  labels: {
    partition: 'Partition', gpus: 'GPUs', cores: 'CPU cores', memory: 'memory', timeLeft: 'Time left', container: 'Container',
    image: 'Image', jupyter: 'JupyterLab', workingDir: 'Working directory', homeDir: 'home directory', kernels: 'Kernels',
    pipTarget: '`pip install` goes to', batch: 'The same environment as a batch job', queued: 'Waiting in the queue',
  },
  queuedReason: 'Slurm\'s reason: %{reason}.',
  /** For a reason that never clears by itself: the partition no longer allows what the form let through. */
  queuedStuck: 'Slurm\'s reason: %{reason}. Slurm will not start this session as it is: the partition\'s limits or state no longer allow it. Delete it and launch again with less (fewer hours, cores, memory or GPUs), or tell your support team that the app\'s limits for this partition are out of date.',
  jobGpus: '%{count} (on its node: GPU %{ids})',
  timeLeft: '%{hours} h %{minutes} min',
  imageFile: '%{image}, run from %{file}',
  jupyterFromOverlay: 'the site\'s JupyterLab for this image\'s Python (%{dir})',
  jupyterInstalled: 'installed for you for this image (%{dir})',
  jupyterFromImage: 'the image\'s own',
  idle: 'This session ends by itself after %{minutes} minute(s) without activity (no running kernel, no open JupyterLab tab), so its GPUs go back.',
} as const;

/**
 * The completed view (completed.html.erb): why the session ended, from the record the job writes
 * (jupyter/ended), and what to do next. Ruby format strings (`%{name}` placeholders).
 */
export const completedMessages = {
  'time-limit': 'The session reached its time limit of %{hours} hour(s), and Slurm ended it.',
  'time-limit-next': 'Launch a new session with more hours if you need them (the %{partition} partition allows up to %{maxHours}). Save your work before the time is up: what is not saved is lost.',
  cancelled: 'The session was cancelled (Delete on its card, or scancel) before its time was up.',
  'cancelled-next': 'Launch a new session when you need one. Notebooks you saved are where you left them.',
  idle: 'The session ended itself after %{minutes} minute(s) without activity, so that its GPUs could go to others.',
  'idle-next': 'Notebooks you saved are where you left them: launch a new session to go on.',
  stopped: 'JupyterLab was shut down from its File menu.',
  'stopped-next': 'Launch a new session when you need one.',
  failed: 'The session stopped with an error:',
  'failed-next': 'If the message does not say how to fix it, send the session\'s output.log to your support team.',
  unknown: 'The session has ended.',
  'unknown-next': 'Its output.log, in the session directory, says more.',
  logTitle: 'From output.log',
} as const;

export const jobMessages = {
  imageMissing: 'ood-jupyter: ERROR: the container image %s does not exist or cannot be read on %s. Choose another container and launch again, or ask your support team to check the image.',
  imageUnreadable: 'ood-jupyter: ERROR: the container image %s on %s cannot be read by you (its file permissions). Choose another container, or ask your support team to make the image readable.',
  imageNotSif: 'ood-jupyter: ERROR: the file %s is not a container image Apptainer can run (it has no SIF or SquashFS header; it may be incomplete). Choose another container, or ask your support team to check the image.',
  noGpuDriver: 'ood-jupyter: ERROR: GPUs were asked for, but node %s has no NVIDIA driver (no /proc/driver/nvidia/version, no nvidia-smi), so no program in the container could use them. Launch again (Slurm may choose another node) and tell your support team the node\'s name.',
  dirUnwritable: 'ood-jupyter: ERROR: cannot write to %s (%s). JupyterLab, its kernels and pip need to write there: free some space in your home directory (it, or its quota, may be full) or fix its permissions, and launch again.',
  unknownContainer: 'ood-jupyter: ERROR: this app has no container named %s (it may have been removed since you opened the form). Open the form again and choose a listed container.',
  runtimeMissing: 'ood-jupyter: ERROR: the container runtime "%s" is not available on %s after the site set-up commands. Please tell your support team.',
  workingDirMissing: 'ood-jupyter: ERROR: cannot enter the working directory %s (it does not exist or you cannot open it). Choose another working directory and launch again.',
  workingDirUnbindable: 'ood-jupyter: ERROR: the working directory %s contains "," or ":", which the container runtime cannot mount in the container. Choose or rename a directory without them.',
  noPython: 'ood-jupyter: ERROR: the image %s has no python3 that runs, which JupyterLab needs. Choose another container.',
  noJupyterLab: 'ood-jupyter: ERROR: the image %s lacks %s for its Python %s, and this site has no JupyterLab for that Python. A definition file for the same image with them is at %s: build it with "apptainer build jupyterlab.sif %s" on a machine with network and launch that image, or ask your support team.',
  probed: 'ood-jupyter: checked what the image %s contains in %s s (remembered: later sessions of this image skip this).',
  usingOverlay: 'ood-jupyter: the image lacks %s; using the site\'s JupyterLab for Python %s (%s).',
  overlayUnusable: 'ood-jupyter: the site\'s JupyterLab at %s does not work with this image (it still lacks %s); trying the next way to get JupyterLab.',
  userInstallNoPip: 'ood-jupyter: ERROR: the image %s lacks %s and has no pip to install them with. A definition file for the same image with them is at %s: build it with "apptainer build jupyterlab.sif %s" and launch that image, or ask your support team.',
  userInstalling: 'ood-jupyter: the image lacks %s; installing JupyterLab and ipykernel for it into %s (once: later sessions of this image reuse it).',
  userInstallOffline: 'ood-jupyter: ERROR: the image %s lacks %s, and %s cannot reach the Python package index to install them. A definition file for the same image with them is at %s: build it with "apptainer build jupyterlab.sif %s" on a login node and launch that image, or ask your support team.',
  userInstallFailed: 'ood-jupyter: ERROR: installing JupyterLab and ipykernel for the image %s failed (%s). Launch another container, or build the image from the definition file %s.',
  environmentSkipped: 'ood-jupyter: no kernel for the environment %s: %s.',
  registryUnreachable: 'ood-jupyter: ERROR: cannot reach the registry %s from %s to fetch %s (compute nodes may have no network). Pull it on a login node ("apptainer pull image.sif URI") and launch that .sif as your own image, or ask your support team to pre-pull it.',
  registryUnchecked: 'ood-jupyter: cannot reach %s to check %s for a newer version; using the copy pulled on %s.',
  registryRefused: 'ood-jupyter: ERROR: the registry refused the image %s (%s). Check the name and tag, and launch again.',
  pulling: 'ood-jupyter: pulling %s into %s (once: later sessions reuse it).',
  pullWaiting: 'ood-jupyter: another session is pulling %s; waiting for it to finish.',
  pulled: 'ood-jupyter: pulled %s in %s s.',
  pullFailed: 'ood-jupyter: ERROR: could not pull %s: %s. Check the image name, or send this log to your support team.',
  cacheUnwritable: 'ood-jupyter: ERROR: cannot create %s (is your home directory full or read-only?). Free some space and launch again.',
  // What other researchers could change (jupyter-session.sh closed_path): a cache, an overlay, an
  // environment. The first two are whole sentences; the %s of each is one of the reasons below.
  dirNotPrivate: 'ood-jupyter: ERROR: %s is not yours alone (%s), so the session will not keep or read its images, packages or settings there. Remove it (or make it yours, mode 0700) and launch again, or ask your support team.',
  siteCacheSkipped: 'ood-jupyter: not using the site image cache %s: %s. Using your own cache instead; please tell your support team.',
  siteCacheUnsafe: 'ood-jupyter: ERROR: the site image cache %s is not safe to fill: %s. Researchers must not be able to change it: make it owned by the account that runs ood-jupyter pull, mode 0755 (chmod 0755 %s), and run pull again.',
  overlayUntrusted: 'ood-jupyter: not using the site\'s JupyterLab at %s: %s. Please tell your support team.',
  badDigest: 'ood-jupyter: ERROR: the image %s names the digest "%s", which is not sha256: followed by 64 hexadecimal digits. Check the image name and launch again.',
  reasonWritable: '%s can be changed by others (mode %s)',
  reasonOwner: '%s belongs to another user (uid %s)',
  reasonMissing: '%s does not exist',
  registryBadRealm: 'its sign-in service is not an https:// address',
  jupyterExited: 'ood-jupyter: ERROR: JupyterLab stopped with exit status %s. The lines above say why; fix that and launch again, or send this log to your support team.',
  portTimeout: 'ood-jupyter: ERROR: JupyterLab was still not ready after %s seconds (on port %s). The lines above may say why; launch again, or send this log to your support team.',
  jupyterNotRunning: 'ood-jupyter: ERROR: JupyterLab ended before it was ready. The lines above say why.',
  siteSetupFailed: 'ood-jupyter: ERROR: the site set-up command "%s" failed on %s. Please send this log to your support team.',
  waiting: 'ood-jupyter: waiting for JupyterLab on %s',
  starting: 'ood-jupyter: starting JupyterLab from %s on %s in %s',
  listening: 'ood-jupyter: JupyterLab is listening on %s:%s',
  portTaken: 'ood-jupyter: another process took port %s before JupyterLab could; starting it on another port.',
  noFreePort: 'ood-jupyter: ERROR: no free port for JupyterLab on %s. Launch again; if it happens again, send this log to your support team.',
  noPortTool: 'ood-jupyter: ERROR: %s has none of the tools the job uses to see whether JupyterLab listens (nc, lsof, bash /dev/tcp or python3). Please tell your support team.',
} as const;
