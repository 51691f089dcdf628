// Fails on any import cycle in src/, counting type imports: between files, and between the
// folders that are layers or features (features/<name>, infra, http, config, composition; a
// root file such as app.ts is its own unit). Run by `npm run lint`; see docs/architecture.md.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import madge from 'madge';

/** The unit a file belongs to for the folder-level check: `src/features/mfa/repo.ts` → `features/mfa`. */
export function unitOf(file: string): string {
  const [top = '', second = '', ...rest] = file
    .replace(/\\/g, '/')
    .replace(/^src\//, '')
    .split('/');
  if (top === 'features' && rest.length > 0) return `features/${second}`;
  if (second) return top;
  return top.replace(/\.[cm]?[jt]s$/, '');
}

/** The folder-level graph of a file graph ({ file: [imported files] }), without self-edges. */
export type Graph = Record<string, string[]>;

/**
 * The folder-level graph of a file graph, without self-edges. A leaf file (it imports nothing of
 * src/, e.g. a provider's constant defaults that config reads) is a unit of its own: it cannot
 * carry a dependency back, so it does not tie its folder to its importers.
 */
export function folderGraph(tree: Graph): Graph {
  const units: Record<string, Set<string>> = {};
  const unit = (file: string) => ((tree[file] ?? []).length === 0 ? file : unitOf(file));
  for (const [file, deps] of Object.entries(tree)) {
    const from = unit(file);
    const out = (units[from] ??= new Set());
    for (const dep of deps) {
      const to = unit(dep);
      units[to] ??= new Set();
      if (to !== from) out.add(to);
    }
  }
  return Object.fromEntries(Object.entries(units).map(([unit, deps]) => [unit, [...deps].sort()]));
}

/** Every elementary cycle of a small graph (Johnson-style search from each node, smallest node first). */
export function cyclesOf(graph: Graph): string[][] {
  const nodes = Object.keys(graph).sort();
  const index = new Map(nodes.map((n, i) => [n, i]));
  const cycles: string[][] = [];
  for (const start of nodes) {
    const s = index.get(start) ?? 0;
    const stack = [start];
    const onStack = new Set([start]);
    const walk = (node: string): void => {
      for (const next of graph[node] ?? []) {
        const i = index.get(next);
        if (i === undefined || i < s) continue;
        if (next === start) cycles.push([...stack]);
        else if (!onStack.has(next) && cycles.length < 10_000) {
          stack.push(next);
          onStack.add(next);
          walk(next);
          stack.pop();
          onStack.delete(next);
        }
      }
    };
    walk(start);
  }
  return cycles;
}

/** The file-level and folder-level cycles of a file graph. */
export function findCycles(tree: Graph): { files: string[][]; folders: string[][] } {
  return { files: cyclesOf(tree), folders: cyclesOf(folderGraph(tree)) };
}

/** The file graph of `dir` (TypeScript and JavaScript, type imports included), as madge reads it. */
export async function readGraph(dir: string, root = process.cwd()): Promise<Graph> {
  const result = await madge(path.resolve(root, dir), {
    baseDir: root,
    fileExtensions: ['ts', 'js'],
    tsConfig: path.join(root, 'tsconfig.json'),
    detectiveOptions: { ts: { skipTypeImports: false }, es6: { skipTypeImports: false } },
  });
  return result.obj();
}

/**
 * Folder-level cycles allowed to remain, written as `check-cycles` prints them. Empty since issue 15
 * removed the last five (sessions own their tokens' signing and checking; sessions write the audit log
 * through their own `SessionAudit` interface; the RBAC guards are told who the caller is). The list may
 * only shrink: a new cycle fails, and so does a listed one that is gone.
 */
export const KNOWN_FEATURE_CYCLES: readonly string[] = [];

const show = (cycle: string[]) => [...cycle, cycle[0]].join(' → ');

/** What fails the check: every file-level cycle, folder cycles not in `known`, and known ones that are gone. */
export function problemsOf(tree: Graph, known: readonly string[] = KNOWN_FEATURE_CYCLES): string[] {
  const { files, folders } = findCycles(tree);
  const found = new Set(folders.map(show));
  return [
    ...files.map((c) => `file cycle: ${show(c)}`),
    ...[...found].filter((c) => !known.includes(c)).map((c) => `folder cycle: ${c}`),
    ...known.filter((c) => !found.has(c)).map((c) => `gone (delete it from KNOWN_FEATURE_CYCLES): ${c}`),
  ];
}

async function main(): Promise<void> {
  const tree = await readGraph('src');
  const problems = problemsOf(tree);
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`check-cycles: ${problems.length} import cycle problem(s) in src/ (docs/architecture.md, "Rules")`);
    process.exitCode = 1;
  } else {
    console.log(`check-cycles: no new import cycles among ${Object.keys(tree).length} files (${KNOWN_FEATURE_CYCLES.length} known feature cycles left)`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
