// The preset files staff edit, described once. Types are inferred from these schemas,
// and the README's preset reference follows them field by field.
import { z } from 'zod';
import { isRegistryImage, jsAnchored, registryImageSource } from '../rules.js';

const wholeNumber = (what: string, min = 0) =>
  z.number({ error: `must be a whole number ≥ ${min}` })
    .int({ error: `must be a whole number ≥ ${min}` })
    .min(min, { error: `must be a whole number ≥ ${min}` })
    .max(1_000_000, { error: `${what} looks wrong: must be at most 1000000` });

const absolutePath = z.string()
  .regex(/^\/[^\0\n\r,:]*$/, { error: 'must be an absolute path (starting with /) without commas, colons or line breaks' })
  .refine((p) => !p.split('/').includes('..'), { error: 'must not contain ".." components' });

/** An OOD cluster id or Slurm name: what may safely appear in a directive and on sbatch's command line. */
const slurmName = z.string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { error: 'must be 1–64 letters, digits, "_", "." or "-", starting with a letter or digit' });

/** A `--flag` or `--flag=value` handed to sbatch verbatim. */
const sbatchArgument = z.string()
  .regex(/^--[a-z][a-z-]*(=[^\s'"\\`$;&|<>]+)?$/, {
    error: 'must be one sbatch option like "--qos=normal" (no spaces, quotes or shell characters)',
  })
  .refine((arg) => !/^--(partition|gres|gpus|gpus-per-node|mem|cpus-per-task|time|account|export|chdir|output|job-name)\b/.test(arg), {
    error: 'sets something the form already controls (partition, GPUs, memory, cores, time, account, output); use the matching preset field',
  });

const range = (what: string, min: number) =>
  z.object({
    default: wholeNumber(what, min),
    max: wholeNumber(what, min),
    min: wholeNumber(what, min).optional(),
  }).strict();

/** What a browser sends as Origin for the portal: scheme, host and port only, compared lower-case. */
const portalOrigin = z.string()
  .regex(/^https?:\/\/[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/, {
    error: 'must be the address researchers open OnDemand at, scheme and host only, such as https://ondemand.example.edu (no path, no trailing "/")',
  })
  .transform((origin) => origin.toLowerCase());

export const siteSchema = z.object({
  cluster: z.union([slurmName, z.array(slurmName).min(1)]).describe('The Open OnDemand cluster id (/etc/ood/config/clusters.d/<id>.yml), or a list of them.'),
  title: z.string().min(1).max(80).default('JupyterLab'),
  description: z.string().max(2000).default('Start JupyterLab inside a container on a compute node.'),
  category: z.string().min(1).max(40).default('Interactive Apps'),
  subcategory: z.string().min(1).max(40).default('Servers'),
  partitions: z.array(slurmName).min(1).optional().describe('Form order of the partitions; the first is the default. Defaults to every partition file, alphabetically.'),
  runtime: z.object({
    command: z.enum(['apptainer', 'singularity']).default('apptainer'),
    setup: z.array(z.string().min(1).regex(/^[^\n\r]*$/, { error: 'must be one line' })).default([]).describe('Shell lines run in the job before the runtime is used, e.g. `module load apptainer`.'),
  }).strict().default({ command: 'apptainer', setup: [] }),
  binds: z.array(absolutePath).default([]),
  /** OOD's portal proxy prefix for JupyterLab: node_uri. rnode_uri strips the path JupyterLab needs. */
  proxyPrefix: z.enum(['node', 'rnode'], { error: 'must be node (the portal\'s node_uri, /node)' })
    .refine((prefix) => prefix === 'node', {
      error: 'rnode cannot serve JupyterLab: the portal strips /rnode/HOST/PORT before forwarding, and JupyterLab answers only under its full base URL. Use node and set node_uri: \'/node\' in ood_portal.yml',
    })
    .default('node'),
  portal: z.object({
    /**
     * Every address researchers reach OnDemand at. Behind a portal that does not preserve the Host
     * header (any portal without Dex), JupyterLab sees Host HOST:PORT and refuses the browser's
     * requests unless their Origin is listed here.
     */
    origins: z.array(portalOrigin).min(1, { error: 'list at least one address of your OnDemand portal, such as https://ondemand.example.edu' })
      .describe('Every address researchers open OnDemand at (https://ondemand.example.edu): the only origins JupyterLab accepts requests from.'),
  }, { error: 'is required: portal.origins lists the addresses of your OnDemand portal (such as https://ondemand.example.edu), the only origins JupyterLab accepts requests from' }).strict(),
  customImages: z.object({
    allow: z.boolean().default(false),
    pathPrefixes: z.array(absolutePath).default([]).describe('Directories a researcher\'s own .sif may live under.'),
    registries: z.array(z.enum(['docker', 'oras'])).default([]).describe('Registry URI schemes a researcher may use (`docker://…`, `oras://…`).'),
  }).strict().default({ allow: false, pathPrefixes: [], registries: [] }),
  images: z.object({
    /**
     * The site image cache: a directory of docker:// and oras:// images that only staff fill, with
     * `ood-jupyter pull`; sessions only read it, never write it. It must be owned by the staff account
     * that runs pull, mode 0755 (its files 0644, same owner): a site cache that is writable by group
     * or others, or holds a file of another owner, is skipped with one line in output.log, and
     * `ood-jupyter doctor` fails it. An image it lacks, without it, or where it is skipped: each
     * researcher's own ~/.cache/ood-jupyter (mode 0700).
     */
    cacheDir: absolutePath.optional().describe('Site image cache for docker:// and oras:// images, filled only by staff with `ood-jupyter pull`; sessions only read it. Owned by the staff account that runs pull, mode 0755, not writable by group or others (else sessions skip it and `ood-jupyter doctor` fails it). Images it lacks go to each researcher\'s own ~/.cache/ood-jupyter.'),
  }).strict().default({}),
  python: z.object({
    /**
     * Site overlays: a directory holding one `python3.X/` directory per Python version, each with
     * JupyterLab and ipykernel for that Python (site-packages/, share/jupyter/, etc/jupyter/, lib/),
     * for images that lack them.
     */
    overlays: absolutePath.optional().describe('Directory of python3.X/ overlays with JupyterLab and ipykernel, for images that lack them.'),
    userInstall: z.boolean().default(false).describe('When neither the image nor an overlay has JupyterLab: install it once per researcher and image (needs network on the compute node).'),
    hideHostUserSite: z.boolean().default(true).describe('Keep the host\'s ~/.local packages out of the container (PYTHONNOUSERSITE=1).'),
    environments: z.array(z.string().regex(/^(~\/|\/)[^\0\n\r]*$/, { error: 'must be an absolute path or start with ~/' })).default([]).describe('More directories whose subdirectories are conda environments or venvs to offer as kernels (besides ~/.conda/envs, ~/venvs and the like). `~/` means the researcher\'s home.'),
  }).strict().default({ userInstall: false, hideHostUserSite: true, environments: [] }),
  accounts: z.enum(['auto', 'text', 'none']).default('none').describe('The account field: auto (the scheduler\'s list, OOD 3.1+), text, or none.'),
  startTimeoutSeconds: wholeNumber('startTimeoutSeconds', 30).max(3600, { error: 'must be at most 3600 (an hour)' }).default(600).describe('How long after.sh waits for JupyterLab to listen before it gives up on the session.'),
}).strict();

export const partitionSchema = z.object({
  label: z.string().min(1).max(80),
  description: z.string().max(1000).default(''),
  cluster: slurmName.optional().describe('Which of the site\'s clusters this partition belongs to (needed only when the site has several).'),
  gpus: z.object({
    type: slurmName.optional().describe('Slurm gres type such as a100; omit for any GPU of the partition.'),
    max: wholeNumber('gpus.max'),
    default: wholeNumber('gpus.default').optional(),
    min: wholeNumber('gpus.min').optional(),
    request: z.enum(['gres', 'gpus-per-node']).default('gres').describe('How the GPUs are asked for: `--gres=gpu:TYPE:N` or `--gpus-per-node=TYPE:N`.'),
  }).strict().default({ max: 0, request: 'gres' }),
  memoryGb: range('memoryGb', 1),
  hours: range('hours', 1),
  cores: z.object({
    default: wholeNumber('cores.default', 1),
    max: wholeNumber('cores.max', 1),
    min: wholeNumber('cores.min', 1).optional(),
    maxPerGpu: wholeNumber('cores.maxPerGpu', 1).optional().describe('Most cores per requested GPU, so one GPU cannot take a whole node\'s CPUs.'),
  }).strict(),
  sbatchArgs: z.array(sbatchArgument).default([]).describe('More sbatch options for this partition, such as --qos=gpu.'),
  containers: z.union([z.literal('all'), z.array(z.string()).min(1)]).default('all').describe('Container names this partition offers; `all` (the default) offers every container.'),
  defaultContainer: z.string().optional().describe('The container chosen when this partition is.'),
  /**
   * End a session after this many minutes without activity (kernels idle, no browser tab, no terminal),
   * so its GPUs go back: idle kernels are culled, then JupyterLab shuts down. 0 (the default) never does.
   */
  idleMinutes: wholeNumber('idleMinutes').max(10080, { error: 'must be at most 10080 (a week)' }).default(0)
    .describe('End a session after this many minutes without activity, so its GPUs go back; 0 never does.'),
}).strict();

const imageError = { error: 'must be an absolute path to a .sif file, or a docker:// or oras:// URI' };
/** A .sif path: absolute, one line (".." is refused below). */
const sifPath = /\/[^\0\n\r]*\.sif/;
/** A registry URI (src/rules.ts, the one definition form.js and submit.yml.erb also use), or a .sif path. */
const imageReference = z.string()
  .regex(new RegExp(jsAnchored(`${registryImageSource}|${sifPath.source}`)), imageError)
  .refine((s) => isRegistryImage(s) || !s.split('/').includes('..'), imageError);

export const containerSchema = z.object({
  label: z.string().min(1).max(80),
  image: imageReference,
  description: z.string().max(1000).default(''),
  jupyterlab: z.boolean().describe('Whether the image ships JupyterLab and ipykernel for `python3` (for staff; the job probes the image).'),
  /** Variables set inside the container. */
  env: z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be a variable name (letters, digits, "_")' }),
    z.string().regex(/^[^\0\n\r]*$/, { error: 'must be one line' }),
  ).default({}),
  binds: z.array(z.string().regex(/^\/[^\0\n\r,:]*(:\/[^\0\n\r,:]*(:(ro|rw))?)?$/, { error: 'must look like /host/path, /host/path:/container/path or /host/path:/container/path:ro' })).default([]).describe('Extra binds for this container: /host/path or /host/path:/container/path[:ro].'),
  setup: z.array(z.string().min(1).regex(/^[^\n\r]*$/, { error: 'must be one line' })).default([]).describe('Shell lines run in the job before this container starts, e.g. `module load cuda`.'),
  gpuSetup: z.array(z.string().min(1).regex(/^[^\n\r]*$/, { error: 'must be one line' })).default([]).describe('Shell lines run only when GPUs were asked for, e.g. `nvidia-modprobe -u -c=0`.'),
}).strict();

export type Site = z.infer<typeof siteSchema>;
export type Partition = z.infer<typeof partitionSchema>;
export type Container = z.infer<typeof containerSchema>;

/** Names of partition and container files: they become form values and directive tokens. */
export const fileNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
