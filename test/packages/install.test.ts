import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The SDKs as a user gets them: `npm pack` both workspaces (their prepack builds dist/), install the
// tarballs into an empty project with `npm install --offline`, then load them there: ESM in Node,
// TypeScript against the shipped .d.ts, and the client through a React Native bundler's resolution.
// No registry: the one dependency (jose, of @tessera/verify) is linked from this repository's node_modules.

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const PACKAGES = ['client', 'verify'] as const;

let tmp: string;
let app: string;
const packed = new Map<string, { filename: string; files: string[]; version: string }>();

/** npm without the npm_* variables of an enclosing `npm test` (they would point it at this repository). */
function npm(args: string[], cwd: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const res = spawnSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  expect(res.status, `npm ${args.join(' ')}\n${res.stdout}\n${res.stderr}`).toBe(0);
  return res.stdout;
}

function tsc(dir: string) {
  const res = spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8', timeout: 60_000 });
  return { status: res.status, out: res.stdout + res.stderr };
}

const readJson = <T = Record<string, unknown>>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'tessera-packages-'));
  const out = npm(['pack', '--json', '--pack-destination', tmp, '-w', '@tessera/client', '-w', '@tessera/verify'], ROOT);
  // prepack's tsc output comes before the JSON array
  const list = JSON.parse(out.slice(out.indexOf('\n[') + 1)) as { name: string; version: string; filename: string; files: { path: string }[] }[];
  for (const p of list) packed.set(p.name, { filename: p.filename, version: p.version, files: p.files.map((f) => f.path).sort() });

  app = path.join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { jose: `file:${path.join(ROOT, 'node_modules/jose')}` } }),
  );
  npm(['install', '--offline', ...[...packed.values()].map((p) => path.join(tmp, p.filename))], app);
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('produces a tarball per package with dist (ESM + .d.ts), README, CHANGELOG and LICENSE, and no sources', () => {
    expect([...packed.keys()].sort()).toEqual(['@tessera/client', '@tessera/verify']);
    const licence = readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
    for (const name of PACKAGES) {
      const p = packed.get(`@tessera/${name}`)!;
      const pkg = readJson<Record<string, unknown>>(path.join(ROOT, 'packages', name, 'package.json'));
      expect(p.filename).toBe(`tessera-${name}-${String(pkg.version)}.tgz`);
      expect(p.files).toEqual(expect.arrayContaining(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']));
      expect(p.files.filter((f) => !/^dist\/[\w-]+\.(js|d\.ts)$/.test(f))).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
      // Publishable metadata: one licence for the project, a version the CHANGELOG lists, no private flag.
      expect(pkg).toMatchObject({ license: 'MIT', type: 'module', engines: { node: '>=20' } });
      expect(pkg.private).toBeUndefined();
      expect(readFileSync(path.join(ROOT, 'packages', name, 'LICENSE'), 'utf8')).toBe(licence);
      expect(readFileSync(path.join(ROOT, 'packages', name, 'CHANGELOG.md'), 'utf8')).toContain(`## [${String(pkg.version)}]`);
      expect(JSON.stringify(pkg)).not.toMatch(/UNLICENSED|TODO|OWNER|your-org|example\.com/i);
    }
    expect(readJson(path.join(ROOT, 'package.json'))).toMatchObject({ license: 'MIT', workspaces: ['packages/client', 'packages/verify'] });
  });
});

describe('npm 11 install scripts', () => {
  it('every dependency with an install script is approved or denied in allowScripts (a fresh install prints no warning)', () => {
    const out = npm(['install-scripts', 'ls'], ROOT);
    expect(out.trim()).toBe('No packages with unreviewed install scripts.');
    expect(readJson(path.join(ROOT, 'package.json')).allowScripts).toEqual({ bcrypt: true, esbuild: true, 'msgpackr-extract': false });
  });
});

describe('installed from the tarballs into an empty project', () => {
  it('imports as ESM in Node: every entry point, and verify checks a token with its jose', () => {
    writeFileSync(
      path.join(app, 'main.js'),
      `
import { createServer } from 'node:http';
import * as client from '@tessera/client';
import * as verify from '@tessera/verify';
import * as fastify from '@tessera/verify/fastify';
import * as express from '@tessera/verify/express';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const { publicKey, privateKey } = await generateKeyPair('ES256');
const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
const server = createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [jwk] })); });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const issuer = 'https://auth.test';
const token = await new SignJWT({ sid: 's1', email: 'ada@example.org', roles: ['admin'], permissions: ['orders:read'] })
  .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
  .setIssuer(issuer).setAudience('tessera').setSubject('u1').setJti('j1').setIssuedAt().setExpirationTime('5m')
  .sign(privateKey);
const verifier = verify.createVerifier({ issuer, audience: 'tessera', algorithms: ['ES256'], jwksUri: 'http://127.0.0.1:' + server.address().port + '/jwks' });
const claims = await verifier.verify(token);
server.close();
const api = client.createClient({ baseUrl: issuer });
console.log(JSON.stringify({
  client: Object.keys(client).sort(),
  verify: Object.keys(verify).sort(),
  fastify: Object.keys(fastify).sort(),
  express: Object.keys(express).sort(),
  claims: { sub: claims.sub, roles: claims.roles, canRead: verify.hasPermission(claims, 'orders:read') },
  decoded: client.decodeJwtPayload(token).sub,
  clientHasFetch: typeof api.fetch,
}));
`,
    );
    const res = spawnSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
    expect(res.status, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      client: [
        'TesseraClient',
        'TesseraError',
        'TesseraNetworkError',
        'buildAuthorizationUrl',
        'checkCallback',
        'checkIdToken',
        'createClient',
        'decodeJwtPayload',
        'localStorageAdapter',
        'memoryStorage',
      ],
      verify: expect.arrayContaining(['VerifyError', 'bearerToken', 'createVerifier', 'hasPermission', 'hasRole']),
      fastify: expect.arrayContaining(['fastifyAuth', 'requirePermission', 'requireRole']),
      express: expect.arrayContaining(['expressAuth', 'expressRequirePermission', 'expressRequireRole']),
      claims: { sub: 'u1', roles: ['admin'], canRead: true },
      decoded: 'u1',
      clientHasFetch: 'function',
    });
    // The packages really came from the tarballs (copied in), not linked to this repository's sources.
    for (const name of PACKAGES) expect(existsSync(path.join(app, 'node_modules/@tessera', name, 'src'))).toBe(false);
  });

  it('type-checks a TypeScript consumer against the shipped .d.ts (NodeNext, and bundler + react-native)', () => {
    writeFileSync(
      path.join(app, 'consumer.ts'),
      [
        "import { createClient, TesseraError, type SignInResult } from '@tessera/client';",
        "import { createVerifier, hasPermission, type AccessTokenClaims } from '@tessera/verify';",
        "import { expressAuth, type AuthRequest } from '@tessera/verify/express';",
        "const auth = createClient({ baseUrl: 'https://auth.test' });",
        'export async function signIn(email: string, password: string): Promise<string> {',
        '  const r: SignInResult = await auth.signIn({ email, password });',
        "  return r.status === 'mfa_required' ? r.mfaToken : (r.session.userId ?? '');",
        '}',
        'export const isTessera = (e: unknown): e is TesseraError => e instanceof TesseraError;',
        "const v = createVerifier({ issuer: 'https://auth.test', audience: 'tessera', algorithms: ['ES256'] });",
        'export const mw = expressAuth(v);',
        "export const ok = (req: AuthRequest): boolean => !!req.auth && hasPermission(req.auth, 'x');",
        "export type P = AccessTokenClaims['permissions'];",
        '// The types are real: these must fail (tsc also fails on an unused @ts-expect-error).',
        '// @ts-expect-error baseUrl is required',
        'createClient({});',
        "// @ts-expect-error 'HS256' is not an accepted algorithm",
        "createVerifier({ issuer: 'x', audience: 'y', algorithms: ['HS256'] });",
      ].join('\n'),
    );
    const base = { strict: true, noEmit: true, target: 'ES2022', lib: ['ES2022', 'DOM'], types: [], skipLibCheck: false };
    for (const [dir, compilerOptions] of [
      ['tsc-node', { ...base, module: 'NodeNext', moduleResolution: 'NodeNext' }],
      ['tsc-rn', { ...base, module: 'ESNext', moduleResolution: 'Bundler', customConditions: ['react-native'] }],
    ] as const) {
      mkdirSync(path.join(app, dir));
      writeFileSync(path.join(app, dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['../consumer.ts'] }));
      const res = tsc(path.join(app, dir));
      expect(res.status, `${dir}: ${res.out}`).toBe(0);
    }
  });

  it('resolves the client the way a React Native bundler does (Metro: react-native condition / field), with no Node built-ins', async () => {
    const dir = path.join(app, 'node_modules/@tessera/client');
    const pkg = readJson<{ exports: Record<string, Record<string, string>>; 'react-native': string; main: string }>(path.join(dir, 'package.json'));
    // Metro with package exports: conditions 'react-native' plus 'import' or 'require' (and 'default'), first match in key order.
    for (const asserted of [
      ['react-native', 'import'],
      ['react-native', 'require'],
    ]) {
      const conditions = new Set([...asserted, 'default']);
      const target = Object.entries(pkg.exports['.']!).find(([c]) => conditions.has(c))?.[1];
      expect(target, asserted.join('+')).toBeDefined();
      expect(existsSync(path.join(dir, target!)), target).toBe(true);
    }
    // Metro without package exports: resolverMainFields ['react-native', 'browser', 'main'].
    expect(pkg['react-native']).toBeDefined();
    expect(existsSync(path.join(dir, pkg['react-native']))).toBe(true);

    // A real bundler with that configuration, for a platform that is not Node: a `node:` import would not resolve.
    writeFileSync(
      path.join(app, 'App.js'),
      "import { createClient, memoryStorage } from '@tessera/client';\nexport const auth = createClient({ baseUrl: 'https://auth.test', storage: memoryStorage() });\n",
    );
    const result = await build({
      absWorkingDir: app,
      entryPoints: ['App.js'],
      bundle: true,
      write: false,
      metafile: true,
      platform: 'neutral',
      format: 'esm',
      conditions: ['react-native'],
      mainFields: ['react-native', 'browser', 'main'],
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    expect(Object.keys(result.metafile.inputs)).toContain('node_modules/@tessera/client/dist/index.js');
    expect(result.outputFiles[0]!.text).toContain('createClient');
  });
});
