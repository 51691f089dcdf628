import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchOptions } from './args.js';
import type { Machine } from './machine.js';

export interface Row {
  metric: string;
  value: string;
  /** Empty when the metric is informational. */
  target: string;
  /** null = no target. */
  ok: boolean | null;
  /** The raw number, for the JSON. */
  raw: number;
}

export interface Report {
  date: string;
  command: string;
  revision: string;
  machine: Machine;
  loadAverageAtEnd: number;
  options: BenchOptions;
  rows: Row[];
  details: Record<string, unknown>;
}

export function row(metric: string, raw: number, value: string, target = '', ok: boolean | null = null): Row {
  return { metric, value, target, ok, raw };
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function renderMarkdown(r: Report): string {
  const m = r.machine;
  const lines = [
    `Tessera benchmark, ${r.date}`,
    '',
    `- machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGb} GB, Node ${m.node}; load average ${m.loadAverageAtStart.toFixed(2)} at start, ${r.loadAverageAtEnd.toFixed(2)} at end`,
    `- command: \`${r.command}\` at ${r.revision}`,
    `- server: ${r.options.workers} workers, bcrypt cost ${r.options.rounds}, ${r.options.connections} connections, ${r.options.duration} s per phase; client, PostgreSQL and server share the machine`,
    '',
    '| metric | value | target | ok? |',
    '|---|---:|---|:---:|',
    ...r.rows.map((x) => `| ${x.metric} | ${x.value} | ${x.target} | ${x.ok === null ? '' : x.ok ? 'yes' : '**NO**'} |`),
  ];
  return lines.join('\n');
}

export function writeJson(r: object, file: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
}
