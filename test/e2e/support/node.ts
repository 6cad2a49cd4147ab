// The real test node (test/node/): Slurm, munge, Apptainer and the JupyterLab images in a Debian sid
// root, entered with nsenter. Host paths under its rootfs are the node's files, so the suite writes
// staged sessions there directly and runs sbatch/squeue/scancel inside as the non-root user.
import { execa } from 'execa';
import { join } from 'node:path';
import { repoRoot } from '../../support/presets.js';

export interface NodeStatus {
  running: boolean;
  rootfs: string;
  user: string;
  uid: number;
  home: string;
  /** A second researcher of the same lab: the neighbour the security tests attack with. */
  neighbour: { user: string; uid: number; home: string };
  /** The lab's group, both researchers in it, and its setgid project directory (mode 2770). */
  lab: { group: string; gid: number; dir: string };
  images: { jupyterlab: string; python3Only: string; jupyterServer1: string };
  partitions: string[];
}

const script = (name: string) => join(repoRoot, 'test', 'node', name);

export async function nodeStatus(): Promise<NodeStatus | null> {
  const result = await execa('bash', [script('status.sh'), '--json'], { reject: false });
  if (result.exitCode !== 0) return null;
  const status = JSON.parse(result.stdout) as NodeStatus;
  return status.running ? status : null;
}

/** Run a command inside the node as the researcher (or root, or the neighbour), stdin passed through. */
export async function inNode(command: string[], opts: { root?: boolean; neighbour?: boolean; input?: string; timeout?: number } = {}) {
  const as = opts.root ? ['--root'] : opts.neighbour ? ['--neighbour'] : [];
  return execa('bash', [script('exec.sh'), ...as, '--', ...command], {
    reject: false, input: opts.input ?? '', timeout: opts.timeout ?? 60_000,
  });
}

export class TestNode {
  constructor(readonly status: NodeStatus) {}

  /** Where a path inside the node is on the host. */
  hostPath(nodePath: string): string {
    return join(this.status.rootfs, nodePath);
  }

  /** Give files the suite wrote as root to the researcher, as if they had written them. */
  async chownToUser(nodePath: string): Promise<void> {
    const result = await inNode(['chown', '-R', `${this.status.user}:`, nodePath], { root: true });
    if (result.exitCode !== 0) throw new Error(`chown ${nodePath}: ${result.stderr}`);
  }

  async sbatch(args: string[], jobScript: string): Promise<string> {
    const result = await inNode(['sbatch', ...args], { input: jobScript });
    if (result.exitCode !== 0) throw new Error(`sbatch ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout.trim().split(';')[0]!;
  }

  /** The job's state letter(s) from squeue, or '' once Slurm forgot it (finished). */
  async jobState(jobId: string): Promise<string> {
    const result = await inNode(['squeue', '-h', '-j', jobId, '-o', '%t']);
    return result.exitCode === 0 ? result.stdout.trim() : '';
  }

  /** The job's time used and time limit in seconds, as the dashboard's Slurm adapter reads them from squeue. */
  async jobTimes(jobId: string): Promise<{ wallclockTime: number; wallclockLimit: number } | null> {
    const result = await inNode(['squeue', '-h', '-j', jobId, '-o', '%M|%l']);
    const [used, limit] = result.stdout.trim().split('|');
    const seconds = (text = '') => {
      const match = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(text.trim());
      return match ? ((Number(match[1] ?? 0) * 24 + Number(match[2] ?? 0)) * 60 + Number(match[3])) * 60 + Number(match[4]) : null;
    };
    const [t, l] = [seconds(used), seconds(limit)];
    return t === null || l === null ? null : { wallclockTime: t, wallclockLimit: l };
  }

  async userJobs(): Promise<string[]> {
    const result = await inNode(['squeue', '-h', '-u', this.status.user, '-o', '%i']);
    return result.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  }

  async scancel(jobId: string): Promise<void> {
    await inNode(['scancel', jobId]);
  }

  /** Command lines of the researcher's processes inside the node. */
  async userProcesses(): Promise<string[]> {
    const result = await inNode(['ps', '-u', this.status.user, '-o', 'args=']);
    return result.stdout.split('\n').filter(Boolean);
  }
}

export const NODE_NOT_RUNNING = 'the test node is not running (bash test/node/build.sh && bash test/node/start.sh)';

/** End this suite unless what it needs is here: skipped with a comment on a developer's machine, a failure in CI. */
export function requireOrExit(t: { fail(message: string): void; comment(message: string): void }, missing: string | null, suite: string): void {
  if (!missing) return;
  if (process.env.CI === 'true') t.fail(`${missing}: CI must run ${suite}`);
  else t.comment(`SKIPPING ${suite}: ${missing}`);
  process.exit(process.env.CI === 'true' ? 1 : 0);
}
