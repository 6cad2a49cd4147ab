// What Slurm says about the cluster, read with its own commands (scontrol, sinfo) through execa:
// for `ood-jupyter init --from-slurm` (and, later, the doctor).
import { execa } from 'execa';

/** One `scontrol show … -o` line as KEY → VALUE. Values may hold spaces (OS=Linux 6.1 #1 SMP). */
export function parseScontrolLine(line: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of line.trim().split(/\s+(?=[A-Za-z][A-Za-z0-9_:/]*=)/)) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at), part.slice(at + 1).trim());
  }
  return fields;
}

/** Slurm's time format (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in minutes; null for UNLIMITED/NONE. */
export function slurmMinutes(text: string | undefined): number | null {
  if (!text || /^(UNLIMITED|INFINITE|NONE|infinite)$/i.test(text)) return null;
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(text);
  if (!m) return null;
  const [, days, a, b, c] = m;
  let minutes: number;
  if (days !== undefined) minutes = Number(a) * 60 + Number(b ?? 0) + Number(c ?? 0) / 60; // D-HH[:MM[:SS]]
  else if (c !== undefined) minutes = Number(a) * 60 + Number(b) + Number(c) / 60; // HH:MM:SS
  else minutes = Number(a) + Number(b ?? 0) / 60; // MM[:SS]
  return Math.floor(minutes + Number(days ?? 0) * 1440);
}

export interface SlurmGpus { count: number; type: string | null }

/** The GPUs of a node's Gres= (gpu:a100:4(S:0-1),gpu:2,…): their total and their type if one. */
export function parseGres(gres: string | undefined): SlurmGpus {
  let count = 0;
  const types = new Set<string | null>();
  for (const entry of (gres ?? '').split(/,(?![^(]*\))/)) {
    const m = /^gpu(?::([A-Za-z0-9_.-]+))?:(\d+)/.exec(entry.trim());
    if (!m) continue;
    count += Number(m[2]);
    types.add(m[1] ?? null);
  }
  return { count, type: types.size === 1 ? [...types][0]! : null };
}

export interface SlurmNode { name: string; cpus: number; memoryMb: number; gpus: SlurmGpus; partitions: string[] }
export interface SlurmPartition {
  name: string; isDefault: boolean; state: string; maxMinutes: number | null; defaultMinutes: number | null;
  maxCpusPerNode: number | null; maxMemPerNodeMb: number | null; nodes: SlurmNode[];
}

const number = (text: string | undefined) => (text && /^\d+$/.test(text) ? Number(text) : null);

export async function readSlurm(): Promise<{ partitions: SlurmPartition[]; clusterName: string | null }> {
  const run = async (command: string, args: string[]) => {
    const result = await execa(command, args, { reject: false });
    if (result.exitCode !== 0) {
      const reason = String(result.stderr || result.message || '').trim().split('\n')[0] ?? '';
      throw new Error(`${command} ${args.join(' ')} failed${result.exitCode === undefined ? ' (is Slurm installed here?)' : ''}: ${reason}`);
    }
    return result.stdout.split('\n').filter((l) => l.trim());
  };
  const [partitionLines, nodeLines, config] = await Promise.all([
    run('scontrol', ['show', 'partition', '-o']),
    run('scontrol', ['show', 'node', '-o']),
    run('scontrol', ['show', 'config']),
  ]);
  // sinfo's * marks the default partition; its order is the cluster's own.
  const sinfo = await run('sinfo', ['-h', '-o', '%P']);
  const nodes: SlurmNode[] = nodeLines.map(parseScontrolLine).map((f) => ({
    name: f.get('NodeName') ?? '', cpus: number(f.get('CPUTot')) ?? number(f.get('CPUs')) ?? 1,
    memoryMb: number(f.get('RealMemory')) ?? 0, gpus: parseGres(f.get('Gres')),
    partitions: (f.get('Partitions') ?? '').split(',').filter(Boolean),
  }));
  const order = sinfo.map((p) => p.trim().replace(/\*$/, ''));
  const partitions = partitionLines.map(parseScontrolLine).map((f): SlurmPartition => {
    const name = f.get('PartitionName') ?? '';
    return {
      name, isDefault: f.get('Default') === 'YES', state: f.get('State') ?? 'UP',
      maxMinutes: slurmMinutes(f.get('MaxTime')), defaultMinutes: slurmMinutes(f.get('DefaultTime')),
      maxCpusPerNode: number(f.get('MaxCPUsPerNode')), maxMemPerNodeMb: number(f.get('MaxMemPerNode')),
      nodes: nodes.filter((n) => n.partitions.includes(name)),
    };
  }).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const clusterName = /^ClusterName\s*=\s*(\S+)/m.exec(config.join('\n'))?.[1] ?? null;
  return { partitions, clusterName };
}
