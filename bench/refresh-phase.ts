import type { Client } from 'autocannon';
import { load, type LoadSummary } from './load.js';
import type { SeedSession } from './seed.js';

export interface RefreshPhaseResult {
  refresh: LoadSummary;
  /** 200s whose refresh token did not carry the next generation: the grace window answered a replay instead of rotating. */
  notAdvanced: number;
  /** A few non-2xx bodies: each one is a broken rotation chain. */
  errorSamples: string[];
}

/** The `gen` claim of a refresh token (payload only; the server verified it). */
export function generationOf(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { gen?: unknown };
  return typeof payload.gen === 'number' ? payload.gen : NaN;
}

/**
 * Refresh-token rotation (`POST /auth/refresh`). Every token is single-use, so
 * each connection owns one session and sends the refresh token of its previous
 * response. autocannon's per-request `context` starts over each time a
 * connection's request list wraps around (after every request, with a list of
 * one), so it cannot carry the token; instead `setupClient` gives every
 * connection its own request whose closures hold that connection's session.
 *
 * A replay of the previous token inside the grace window also answers 200, so
 * 200s alone would not show a broken feed: each new token must carry the next
 * generation, and those that do not are counted.
 */
export async function runRefreshPhase(opts: { baseUrl: string; sessions: SeedSession[]; duration: number }): Promise<RefreshPhaseResult> {
  const errorSamples: string[] = [];
  let notAdvanced = 0;
  let connection = 0;
  const setupClient = (client: Client) => {
    const session = opts.sessions[connection++];
    if (!session) throw new Error('more connections than seeded sessions');
    let token = session.refreshToken;
    let generation = generationOf(token);
    client.setRequests([
      {
        method: 'POST',
        path: '/auth/refresh',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ refresh_token: token }) }),
        onResponse: (status, body) => {
          if (status !== 200) {
            if (errorSamples.length < 5) errorSamples.push(`${status} ${body.slice(0, 200)}`);
            return;
          }
          token = (JSON.parse(body) as { refresh_token: string }).refresh_token;
          const next = generationOf(token);
          if (next !== generation + 1) notAdvanced++;
          generation = next;
        },
      },
    ]);
  };
  const refresh = await load({ url: opts.baseUrl, connections: opts.sessions.length, duration: opts.duration, setupClient });
  return { refresh, notAdvanced, errorSamples };
}
