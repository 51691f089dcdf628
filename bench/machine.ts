import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  /** 1-minute load average when the run started: anything else running skews every number. */
  loadAverageAtStart: number;
}

export function describeMachine(): Machine {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  return { cores: availableParallelism(), cpuModel, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverageAtStart: loadavg()[0]! };
}

/** The commit measured, `-dirty` when the working tree has changes (they are built and measured too). */
export function describeRevision(repoRoot: string): string {
  const res = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: repoRoot, encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : 'unknown';
}
