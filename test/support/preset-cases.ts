// The broken presets the tests use: one edit of the bundled presets each, and the problem
// `ood-jupyter validate` must report (file, field, the line to edit, message). test/presets.test.ts
// checks the reports; test/schema.test.ts checks that the JSON Schemas refuse those they can express.
import type { Edit } from './presets.js';

export interface Case {
  name: string;
  edits: Edit[];
  /** The problem expected: its file, field, a text on the line it must point at, and message. */
  file: string;
  field: string;
  lineWith: string;
  message: RegExp;
}

const gpu = 'partitions/gpu.yml';
const cpu = 'partitions/cpu.yml';
const large = 'partitions/gpu-large.yml';
const pytorch = 'containers/pytorch.yml';
const site = 'site.yml';

export const cases: Case[] = [
  // site.yml, field by field
  { name: 'cluster id with a space', edits: [{ file: site, from: 'cluster: example', to: 'cluster: my cluster' }],
    file: site, field: 'cluster', lineWith: 'cluster: my cluster', message: /letters, digits/ },
  { name: 'empty title', edits: [{ file: site, from: 'title: JupyterLab', to: 'title: ""' }],
    file: site, field: 'title', lineWith: 'title: ""', message: /at least 1|too small|>=1/i },
  { name: 'unknown runtime', edits: [{ file: site, from: 'command: apptainer', to: 'command: docker' }],
    file: site, field: 'runtime.command', lineWith: 'command: docker', message: /apptainer|singularity/ },
  { name: 'multi-line setup entry', edits: [{ file: site, from: '    - module load apptainer', to: '    - "module load\\napptainer"' }],
    file: site, field: 'runtime.setup[0]', lineWith: 'module load', message: /one line/ },
  { name: 'relative bind path', edits: [{ file: site, from: '  - /scratch\n  - /project\n\n#', to: '  - scratch\n  - /project\n\n#' }],
    file: site, field: 'binds[0]', lineWith: '  - scratch', message: /absolute path/ },
  { name: 'bind path with ..', edits: [{ file: site, from: '  - /project\n\n# Open', to: '  - /project/../etc\n\n# Open' }],
    file: site, field: 'binds[1]', lineWith: '/project/../etc', message: /"\.\."/ },
  { name: 'unknown proxy prefix', edits: [{ file: site, from: 'proxyPrefix: node', to: 'proxyPrefix: proxy' }],
    file: site, field: 'proxyPrefix', lineWith: 'proxyPrefix: proxy', message: /node|rnode/ },
  { name: 'rnode proxy prefix (it strips the path JupyterLab needs)', edits: [{ file: site, from: 'proxyPrefix: node', to: 'proxyPrefix: rnode' }],
    file: site, field: 'proxyPrefix', lineWith: 'proxyPrefix: rnode', message: /rnode cannot serve JupyterLab: the portal strips \/rnode\/HOST\/PORT.*node_uri/ },
  { name: 'portal origin with a path', edits: [{ file: site, from: '    - https://ondemand.example.edu', to: '    - https://ondemand.example.edu/pun/sys/dashboard' }],
    file: site, field: 'portal.origins[0]', lineWith: '/pun/sys/dashboard', message: /scheme and host only, such as https:\/\/ondemand\.example\.edu/ },
  { name: 'portal origin without a scheme', edits: [{ file: site, from: '    - https://ondemand.example.edu', to: '    - ondemand.example.edu' }],
    file: site, field: 'portal.origins[0]', lineWith: '    - ondemand.example.edu', message: /scheme and host only/ },
  { name: 'no portal origins', edits: [{ file: site, from: 'portal:\n  origins:\n    - https://ondemand.example.edu\n', to: 'portal:\n  origins: []\n' }],
    file: site, field: 'portal.origins', lineWith: 'origins: []', message: /at least one address of your OnDemand portal/ },
  { name: 'custom images "yes" instead of true', edits: [{ file: site, from: 'allow: true', to: 'allow: "yes"' }],
    file: site, field: 'customImages.allow', lineWith: 'allow: "yes"', message: /boolean/ },
  { name: 'unknown registry scheme', edits: [{ file: site, from: '    - docker', to: '    - ftp' }],
    file: site, field: 'customImages.registries[0]', lineWith: '    - ftp', message: /docker|oras/ },
  { name: 'unknown account handling', edits: [{ file: site, from: 'accounts: auto', to: 'accounts: always' }],
    file: site, field: 'accounts', lineWith: 'accounts: always', message: /auto|text|none/ },
  { name: 'misspelled site field', edits: [{ file: site, from: 'title: JupyterLab', to: 'titel: JupyterLab' }],
    file: site, field: 'titel', lineWith: 'titel:', message: /not a known field/ },
  { name: 'start timeout too short', edits: [{ file: site, from: 'accounts: auto', to: 'accounts: auto\nstartTimeoutSeconds: 5' }],
    file: site, field: 'startTimeoutSeconds', lineWith: 'startTimeoutSeconds', message: /≥ 30/ },
  { name: 'custom images allowed from nowhere',
    edits: [{ file: site, from: '  pathPrefixes:\n    - /project/containers\n    - /scratch\n  registries:\n    - docker\n', to: '' }],
    file: site, field: 'customImages.allow', lineWith: 'allow: true', message: /neither pathPrefixes nor registries/ },
  { name: 'partition order names a missing partition', edits: [{ file: site, from: '  - gpu-large\n', to: '  - gpu-large\n  - gpu-huge\n' }],
    file: site, field: 'partitions[2]', lineWith: '  - gpu-huge', message: /no preset file partitions\/gpu-huge\.yml/ },
  { name: 'partition order forgets a partition', edits: [{ file: site, from: '  - cpu\n', to: '' }],
    file: site, field: 'partitions', lineWith: 'partitions:', message: /does not list "cpu"/ },

  { name: 'category as a number', edits: [{ file: site, from: 'title: JupyterLab', to: 'title: JupyterLab\ncategory: 42' }],
    file: site, field: 'category', lineWith: 'category: 42', message: /expected string/ },
  { name: 'several clusters, partition names none', edits: [{ file: site, from: 'cluster: example', to: 'cluster: [east, west]' }],
    file: gpu, field: 'cluster', lineWith: 'label: GPU (A100)', message: /is required: the site has several clusters \(east, west\)/ },

  // a partition, field by field
  { name: 'description as a list', edits: [{ file: gpu, from: 'description: Nodes with 4 NVIDIA A100 GPUs; up to 8 hours.', to: 'description: [a, b]' }],
    file: gpu, field: 'description', lineWith: 'description: [a, b]', message: /expected string/ },
  { name: 'GPU minimum above max', edits: [{ file: gpu, from: '  default: 1\nmemoryGb', to: '  default: 1\n  min: 6\nmemoryGb' }],
    file: gpu, field: 'gpus.min', lineWith: 'min: 6', message: /above max \(4\)/ },
  { name: 'cores minimum zero', edits: [{ file: cpu, from: '  default: 4\n  max: 32', to: '  default: 4\n  max: 32\n  min: 0' }],
    file: cpu, field: 'cores.min', lineWith: 'min: 0', message: /whole number ≥ 1/ },
  { name: 'GPU count as a word', edits: [{ file: gpu, from: '  max: 4\n', to: '  max: four\n' }],
    file: gpu, field: 'gpus.max', lineWith: 'max: four', message: /whole number ≥ 0/ },
  { name: 'fractional GPU count', edits: [{ file: gpu, from: '  max: 4\n', to: '  max: 2.5\n' }],
    file: gpu, field: 'gpus.max', lineWith: 'max: 2.5', message: /whole number ≥ 0/ },
  { name: 'negative GPU count', edits: [{ file: gpu, from: '  max: 4\n', to: '  max: -1\n' }],
    file: gpu, field: 'gpus.max', lineWith: 'max: -1', message: /whole number ≥ 0/ },
  { name: 'GPU type with a space', edits: [{ file: gpu, from: 'type: a100', to: 'type: a 100' }],
    file: gpu, field: 'gpus.type', lineWith: 'type: a 100', message: /letters, digits/ },
  { name: 'unknown GPU request style', edits: [{ file: large, from: 'request: gpus-per-node', to: 'request: gpus' }],
    file: large, field: 'gpus.request', lineWith: 'request: gpus', message: /gres|gpus-per-node/ },
  { name: 'GPU default above max', edits: [{ file: gpu, from: '  default: 1\nmemoryGb', to: '  default: 5\nmemoryGb' }],
    file: gpu, field: 'gpus.default', lineWith: 'default: 5', message: /between min \(1\) and max \(4\)/ },
  { name: 'GPU type on a CPU partition', edits: [{ file: cpu, from: 'memoryGb:', to: 'gpus:\n  type: a100\n  max: 0\nmemoryGb:' }],
    file: cpu, field: 'gpus.type', lineWith: 'type: a100', message: /CPU partition/ },
  { name: 'zero memory', edits: [{ file: gpu, from: '  default: 32', to: '  default: 0' }],
    file: gpu, field: 'memoryGb.default', lineWith: 'default: 0', message: /whole number ≥ 1/ },
  { name: 'memory as text', edits: [{ file: gpu, from: '  max: 480', to: '  max: lots' }],
    file: gpu, field: 'memoryGb.max', lineWith: 'max: lots', message: /whole number/ },
  { name: 'memory min above max', edits: [{ file: gpu, from: '  max: 480', to: '  max: 480\n  min: 500' }],
    file: gpu, field: 'memoryGb.min', lineWith: 'min: 500', message: /above max \(480\)/ },
  { name: 'hours max missing', edits: [{ file: gpu, from: '  max: 8\ncores', to: 'cores' }],
    file: gpu, field: 'hours.max', lineWith: 'hours:', message: /is required/ },
  { name: 'hours default above max', edits: [{ file: cpu, from: '  default: 4\n  max: 24', to: '  default: 48\n  max: 24' }],
    file: cpu, field: 'hours.default', lineWith: 'default: 48', message: /between min \(1\) and max \(24\)/ },
  { name: 'cores default above max', edits: [{ file: cpu, from: '  default: 4\n  max: 32', to: '  default: 40\n  max: 32' }],
    file: cpu, field: 'cores.default', lineWith: 'default: 40', message: /between/ },
  { name: 'cores per GPU on a CPU partition', edits: [{ file: cpu, from: '  max: 32', to: '  max: 32\n  maxPerGpu: 8' }],
    file: cpu, field: 'cores.maxPerGpu', lineWith: 'maxPerGpu: 8', message: /only to partitions with GPUs/ },
  { name: 'default cores above the per-GPU share', edits: [{ file: gpu, from: 'maxPerGpu: 16', to: 'maxPerGpu: 4' }],
    file: gpu, field: 'cores.default', lineWith: 'default: 8', message: /maxPerGpu × gpus.default \(4\)/ },
  { name: 'sbatch argument with a space', edits: [{ file: gpu, from: '--qos=interactive', to: '--qos=a b' }],
    file: gpu, field: 'sbatchArgs[0]', lineWith: '--qos=a b', message: /one sbatch option/ },
  { name: 'sbatch argument with a shell character', edits: [{ file: gpu, from: '--qos=interactive', to: '--qos=x;reboot' }],
    file: gpu, field: 'sbatchArgs[0]', lineWith: '--qos=x;reboot', message: /one sbatch option/ },
  { name: 'sbatch argument the form controls', edits: [{ file: gpu, from: '--qos=interactive', to: '--mem=5G' }],
    file: gpu, field: 'sbatchArgs[0]', lineWith: '--mem=5G', message: /form already controls/ },
  { name: 'unknown container name', edits: [{ file: large, from: '  - tensorflow', to: '  - tensorflw' }],
    file: large, field: 'containers[1]', lineWith: '- tensorflw', message: /"tensorflw" is not a container preset/ },
  { name: 'container listed twice', edits: [{ file: large, from: '  - tensorflow', to: '  - pytorch # again' }],
    file: large, field: 'containers[1]', lineWith: '# again', message: /listed twice/ },
  { name: 'default container not offered', edits: [{ file: cpu, from: 'defaultContainer: datascience', to: 'defaultContainer: tensorflow' }],
    file: cpu, field: 'defaultContainer', lineWith: 'defaultContainer: tensorflow', message: /not among this partition's containers/ },
  { name: 'partition on an unknown cluster', edits: [{ file: gpu, from: 'label: GPU (A100)', to: 'label: GPU (A100)\ncluster: other' }],
    file: gpu, field: 'cluster', lineWith: 'cluster: other', message: /not one of the site's clusters/ },
  { name: 'misspelled partition field', edits: [{ file: gpu, from: 'sbatchArgs:', to: 'sbatchArg:' }],
    file: gpu, field: 'sbatchArg', lineWith: 'sbatchArg:', message: /not a known field/ },
  { name: 'partition label missing', edits: [{ file: gpu, from: 'label: GPU (A100)\n', to: '' }],
    file: gpu, field: 'label', lineWith: 'description:', message: /is required/ },

  // a container, field by field
  { name: 'container description as a mapping', edits: [{ file: pytorch, from: 'description: PyTorch with CUDA, JupyterLab and ipykernel.', to: 'description: {a: 1}' }],
    file: pytorch, field: 'description', lineWith: 'description: {a: 1}', message: /expected string/ },
  { name: 'relative image path', edits: [{ file: pytorch, from: 'image: /project/containers/', to: 'image: containers/' }],
    file: pytorch, field: 'image', lineWith: 'image: containers/', message: /absolute path to a \.sif file/ },
  { name: 'http image URI', edits: [{ file: pytorch, from: 'image: /project/containers/pytorch-2.5-cuda12.4-jupyterlab.sif', to: 'image: http://example.org/x.sif' }],
    file: pytorch, field: 'image', lineWith: 'image: http', message: /docker:\/\/ or oras:\/\// },
  { name: 'jupyterlab flag as text', edits: [{ file: pytorch, from: 'jupyterlab: true', to: 'jupyterlab: maybe' }],
    file: pytorch, field: 'jupyterlab', lineWith: 'jupyterlab: maybe', message: /boolean/ },
  { name: 'container label missing', edits: [{ file: pytorch, from: 'label: PyTorch 2.5 (CUDA 12.4)\n', to: '' }],
    file: pytorch, field: 'label', lineWith: 'image:', message: /is required/ },
  { name: 'container named like the custom-image choice', edits: [{ file: 'containers/custom.yml', from: null, to: 'label: X\nimage: /x.sif\njupyterlab: true\n' }],
    file: 'containers/custom.yml', field: '', lineWith: 'label: X', message: /reserved/ },
  { name: 'partition names the browser cannot tell apart', edits: [{ file: 'partitions/gpu_large.yml', from: null, to: 'label: X\nmemoryGb: {default: 1, max: 2}\nhours: {default: 1, max: 2}\ncores: {default: 1, max: 2}\n' }],
    file: 'partitions/gpu_large.yml', field: '', lineWith: 'label: X', message: /cannot tell partition "gpu_large" from "gpu-large"/ },

  // files that are not valid YAML at all
  { name: 'YAML syntax error', edits: [{ file: gpu, from: 'hours:\n  default: 2', to: 'hours:\n  default: [2' }],
    file: gpu, field: '', lineWith: 'max: 8', message: /is not valid YAML/ },
];
