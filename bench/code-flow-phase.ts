import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from 'autocannon';
import { load, type LoadSummary } from './load.js';

// The OpenID authorization code flow end to end, as a browser with a single sign-on
// session and a first-party public client (PKCE) go through it: GET /auth/authorize →
// 303 to the redirect URI with a code → POST /auth/token (authorization_code +
// code_verifier) → access, refresh and ID tokens. One flow = both requests.

const REDIRECT_URI = 'http://127.0.0.1:8765/callback';

export interface CodeFlowPhaseResult {
  /** Complete flows (a code redeemed for tokens) per second. */
  flowsPerSecond: number;
  flows: number;
  /** Authorize answers without a code, and token answers other than 200 with an ID token. */
  failures: number;
  /** Both requests of each flow, as the load tool saw them (303s count as non-2xx there). */
  requests: LoadSummary;
  /** Authorize answers without a code, token answers other than 200: a few of each. */
  errorSamples: string[];
}

/** Registers the bench's client with the CLI (`tessera clients create`) on the server's database. */
async function registerClient(repoRoot: string, databaseUrl: string, dataDir: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      path.join(repoRoot, 'dist/cli.js'),
      'clients',
      'create',
      '--name',
      'bench web app',
      '--type',
      'public',
      '--first-party',
      '--redirect-uri',
      REDIRECT_URI,
      '--grant',
      'authorization_code,refresh_token',
      '--json',
    ],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: databaseUrl, DATA_DIR: dataDir } },
  );
  const clientId = (JSON.parse(stdout) as { client?: { client_id?: string } }).client?.client_id;
  if (!clientId) throw new Error(`clients create printed no client_id: ${stdout}`);
  return clientId;
}

/** A minimal cookie jar: name → value of every Set-Cookie seen. */
function remember(jar: Map<string, string>, res: Response): void {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair?.indexOf('=') ?? -1;
    if (pair && eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
}
const cookieHeader = (jar: Map<string, string>) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

function authorizePath(clientId: string, challenge: string, state: string): string {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return `/auth/authorize?${q.toString()}`;
}

/** Signs in once through the hosted page, as a browser: the cookies of its single sign-on session. */
async function browserSession(baseUrl: string, clientId: string, challenge: string, user: { email: string; password: string }): Promise<string> {
  const jar = new Map<string, string>();
  const get = async (url: string) => {
    const res = await fetch(new URL(url, baseUrl), { redirect: 'manual', headers: { cookie: cookieHeader(jar) } });
    remember(jar, res);
    return res;
  };
  const first = await get(authorizePath(clientId, challenge, 'bench-setup'));
  const signInUrl = first.headers.get('location');
  if (first.status !== 303 || !signInUrl) throw new Error(`authorize without a session answered ${first.status}, not a redirect to the sign-in page`);
  const page = await get(signInUrl);
  const html = await page.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  const request = /name="request" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf || !request) throw new Error(`the sign-in page has no csrf/request fields (status ${page.status})`);
  const res = await fetch(new URL('/auth/ui/sign-in', baseUrl), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader(jar) },
    body: new URLSearchParams({ csrf, request, email: user.email, password: user.password }).toString(),
  });
  remember(jar, res);
  const back = res.headers.get('location') ?? '';
  if (res.status !== 303 || !back.startsWith(REDIRECT_URI)) throw new Error(`the hosted sign-in answered ${res.status} → ${back || '(no location)'}`);
  return cookieHeader(jar);
}

export async function runCodeFlowPhase(opts: {
  repoRoot: string;
  baseUrl: string;
  databaseUrl: string;
  dataDir: string;
  user: { email: string; password: string };
  connections: number;
  duration: number;
}): Promise<CodeFlowPhaseResult> {
  const clientId = await registerClient(opts.repoRoot, opts.databaseUrl, opts.dataDir);
  // One verifier for every flow: each code is still bound to its challenge, single-use and short-lived.
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const cookie = await browserSession(opts.baseUrl, clientId, challenge, opts.user);

  let flows = 0;
  const errorSamples: string[] = [];
  let failures = 0;
  const sample = (s: string) => {
    failures++;
    if (errorSamples.length < 5) errorSamples.push(s);
  };
  let n = 0;
  const setupClient = (client: Client) => {
    const connection = n++;
    let code = '';
    client.setRequests([
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: authorizePath(clientId, challenge, `c${connection}`), headers: { cookie } }),
        onResponse: (status, _body, _context, headers) => {
          const location = headers.location;
          const at = typeof location === 'string' && location.startsWith(REDIRECT_URI) ? new URL(location) : null;
          code = at?.searchParams.get('code') ?? '';
          if (!code) sample(`authorize ${status} → ${String(location)}`);
        },
      },
      {
        method: 'POST',
        path: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        setupRequest: (req) => ({
          ...req,
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: REDIRECT_URI,
            client_id: clientId,
            code_verifier: verifier,
          }).toString(),
        }),
        onResponse: (status, body) => {
          if (status === 200 && body.includes('"id_token"')) flows++;
          else sample(`token ${status} ${body.slice(0, 200)}`);
        },
      },
    ]);
  };
  const requests = await load({ url: opts.baseUrl, connections: opts.connections, duration: opts.duration, setupClient });
  return { flowsPerSecond: flows / opts.duration, flows, failures, requests, errorSamples };
}
