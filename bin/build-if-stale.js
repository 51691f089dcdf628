#!/usr/bin/env node
// Before `npm start` (and `npm run worker`, `npm run migrate`): compiles src/ to dist/
// only when dist/ is missing or older than the sources, so a restart starts in well under
// 2 s instead of waiting 20–30 s for tsc. The stamp (dist/.build-stamp) records the newest
// modification time and the list of the files the build read (src/**, tsconfig*.json,
// package.json); any change to them, a file added or removed included, rebuilds.
// `npm run build` always builds (and writes the stamp too). `--print` shows the decision only.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const stampFile = path.join(root, 'dist', '.build-stamp');

/** Every file under `dir`, recursively. */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

/** What the build depends on, summarised: the newest mtime and a hash of the paths. */
export function sourceStamp() {
  const files = [...walk(path.join(root, 'src')), ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => path.join(root, f))].sort();
  let newest = 0;
  const h = createHash('sha256');
  for (const f of files) {
    newest = Math.max(newest, statSync(f).mtimeMs);
    h.update(path.relative(root, f)).update('\0');
  }
  return `${newest} ${files.length} ${h.digest('hex')}`;
}

function upToDate(stamp) {
  if (!existsSync(path.join(root, 'dist', 'main.js')) || !existsSync(stampFile)) return false;
  return readFileSync(stampFile, 'utf8').trim() === stamp;
}

export function buildIfStale({ force = false, print = false } = {}) {
  const stamp = sourceStamp();
  if (!force && upToDate(stamp)) {
    if (print) console.log('dist/ is up to date');
    return false;
  }
  if (print) {
    console.log('dist/ is stale: it would be rebuilt');
    return true;
  }
  console.error('tessera: compiling src/ to dist/ (tsc)…');
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
  writeFileSync(stampFile, `${stamp}\n`);
  return true;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('build-if-stale.js')) {
  buildIfStale({ force: process.argv.includes('--force'), print: process.argv.includes('--print') });
}
