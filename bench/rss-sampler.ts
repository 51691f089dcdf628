import { readFileSync } from 'node:fs';
import { childPids } from './server.js';

export interface PeakRss {
  pid: number;
  role: 'primary' | 'worker';
  peakMb: number;
  /** Peak RssAnon: memory of the process's own, without the shared pages of the node binary and libraries. */
  peakAnonMb: number;
  /** The peak within each phase (see `phase`). */
  byPhaseMb: Record<string, number>;
}

export interface RssSampler {
  /** Names the phase the next samples belong to. */
  phase(name: string): void;
  /** Stops sampling (idempotent) and returns the peaks, primary first. */
  stop(): PeakRss[];
}

function rssKb(pid: number): { rss: number; anon: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: field('VmRSS'), anon: field('RssAnon') };
  } catch {
    return null; // exited
  }
}

export interface RssNow {
  /** VmRSS summed over the primary and its workers. */
  totalMb: number;
  /** RssAnon summed the same way (without shared pages of the binary and libraries). */
  anonMb: number;
  byPid: Record<number, number>;
}

/** The RSS of the primary and every child of it, now. */
export function currentRss(primaryPid: number): RssNow {
  let rss = 0;
  let anon = 0;
  const byPid: Record<number, number> = {};
  for (const pid of [primaryPid, ...childPids(primaryPid)]) {
    const kb = rssKb(pid);
    if (kb === null) continue;
    rss += kb.rss;
    anon += kb.anon;
    byPid[pid] = Math.round(kb.rss / 1024);
  }
  return { totalMb: rss / 1024, anonMb: anon / 1024, byPid };
}

/** Samples VmRSS of the primary and every child of it every `everyMs`; keeps the max per pid (and per phase). */
export function sampleRss(primaryPid: number, everyMs = 250): RssSampler {
  const peaks = new Map<number, Map<string, number>>();
  const anonPeaks = new Map<number, number>();
  let current = 'start-up';
  const sample = () => {
    for (const pid of [primaryPid, ...childPids(primaryPid)]) {
      const kb = rssKb(pid);
      if (kb === null) continue;
      const byPhase = peaks.get(pid) ?? new Map<string, number>();
      byPhase.set(current, Math.max(byPhase.get(current) ?? 0, kb.rss));
      anonPeaks.set(pid, Math.max(anonPeaks.get(pid) ?? 0, kb.anon));
      peaks.set(pid, byPhase);
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    phase: (name) => {
      sample();
      current = name;
    },
    stop: () => {
      clearInterval(timer);
      sample();
      return [...peaks].map(([pid, byPhase]) => ({
        pid,
        role: pid === primaryPid ? 'primary' : 'worker',
        peakMb: Math.max(...byPhase.values()) / 1024,
        peakAnonMb: (anonPeaks.get(pid) ?? 0) / 1024,
        byPhaseMb: Object.fromEntries([...byPhase].map(([name, kb]) => [name, Math.round(kb / 1024)])),
      }));
    },
  };
}
