#!/usr/bin/env node
// Regenerates CHANGELOG.md from the conventional commits (`type(scope): subject`) of the
// current branch: one section per day of work, newest first, the commits grouped by type.
// Merge commits and anything not in the conventional form are left out.
//
//   node scripts/changelog.mjs          writes CHANGELOG.md
//   node scripts/changelog.mjs --stdout prints it instead
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Types in the order a reader wants them, with their headings. */
const TYPES = [
  ['feat', 'Features'],
  ['fix', 'Fixes'],
  ['perf', 'Performance'],
  ['refactor', 'Refactoring'],
  ['docs', 'Documentation'],
  ['test', 'Tests'],
  ['bench', 'Benchmarks'],
  ['build', 'Build'],
  ['ci', 'CI'],
  ['style', 'Style'],
  ['chore', 'Chores'],
];
const HEADINGS = new Map(TYPES);
const CONVENTIONAL = /^([a-z]+)(?:\(([^)]+)\))?(!)?: (.+)$/;

const log = execFileSync('git', ['log', '--no-merges', '--date=short', '--format=%ad%x1f%h%x1f%s'], { cwd: root, encoding: 'utf8' });

/** date → type → lines, in git log order (newest first). */
const days = new Map();
for (const line of log.split('\n')) {
  if (!line) continue;
  const [date, hash, subject] = line.split('\x1f');
  const m = CONVENTIONAL.exec(subject ?? '');
  if (!date || !hash || !m) continue;
  const [, type, scope, breaking, text] = m;
  if (!HEADINGS.has(type)) continue;
  const byType = days.get(date) ?? new Map();
  days.set(date, byType);
  const entries = byType.get(type) ?? [];
  byType.set(type, entries);
  entries.push(`- ${breaking ? '**breaking** ' : ''}${scope ? `**${scope}**: ` : ''}${text} (${hash})`);
}

const out = [
  '# Changelog',
  '',
  'Generated from the conventional commits by `npm run changelog` (scripts/changelog.mjs): one section',
  'per day of work, newest first. Do not edit by hand; write a good commit message instead.',
  'The SDK packages keep their own: packages/client/CHANGELOG.md, packages/verify/CHANGELOG.md.',
];
for (const [date, byType] of days) {
  out.push('', `## ${date}`);
  for (const [type, heading] of TYPES) {
    const entries = byType.get(type);
    if (entries) out.push('', `### ${heading}`, '', ...entries);
  }
}
const text = `${out.join('\n')}\n`;

if (process.argv.includes('--stdout')) process.stdout.write(text);
else writeFileSync(path.join(root, 'CHANGELOG.md'), text);
