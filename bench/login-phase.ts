import { scrapeEventLoopLag, type EventLoopLag } from './event-loop-stalls.js';
import { load, type LoadSummary } from './load.js';
import type { SeedUser } from './seed.js';

export interface LoginPhaseResult {
  login: LoadSummary;
  /** GET /users/me, rate-limited, at the same time as the logins; null when run without the probe. */
  profileDuringLogin: LoadSummary | null;
  profileRate: number;
  eventLoopLag: EventLoopLag;
  /** A few non-2xx login bodies, to say why. */
  errorSamples: string[];
}

/**
 * Requests/s of the /users/me probe: a steady stream of session checks (1,000
 * latency samples in 10 s), not a second saturating load. It is not free: on 2
 * shared cores, 100/s measured 5–8 % fewer logins/s than 1–10/s.
 */
export const PROFILE_PROBE_RATE = 100;

/**
 * Password logins (`POST /auth/token`, form-encoded, rotating through the
 * seeded users) on `connections` connections, while a rate-limited probe reads
 * `/users/me` with a seeded access token (`probeRate: 0`: no probe, for the pure
 * login throughput); event-loop stalls are read from /metrics right before and
 * right after (see event-loop-stalls.ts).
 */
export async function runLoginPhase(opts: {
  baseUrl: string;
  users: SeedUser[];
  accessToken: string;
  connections: number;
  duration: number;
  workers: number;
  probeRate?: number;
}): Promise<LoginPhaseResult> {
  const probeRate = opts.probeRate ?? PROFILE_PROBE_RATE;
  const { baseUrl, users } = opts;
  const scrapes = 2 * opts.workers;
  const bodies = users.map((u) => new URLSearchParams({ grant_type: 'password', username: u.email, password: u.password }).toString());
  let next = 0;
  const errorSamples: string[] = [];

  await scrapeEventLoopLag(baseUrl, scrapes); // resets every worker's histogram
  const [login, profileDuringLogin] = await Promise.all([
    load({
      url: baseUrl,
      connections: opts.connections,
      duration: opts.duration,
      timeout: 30,
      requests: [
        {
          method: 'POST',
          path: '/auth/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length]! }),
          onResponse: (status, body) => {
            if ((status < 200 || status > 299) && errorSamples.length < 5) errorSamples.push(`${status} ${body.slice(0, 200)}`);
          },
        },
      ],
    }),
    probeRate > 0
      ? load({
          url: `${baseUrl}/users/me`,
          connections: Math.max(2, opts.workers),
          duration: opts.duration,
          overallRate: probeRate,
          headers: { authorization: `Bearer ${opts.accessToken}` },
        })
      : null,
  ]);
  const eventLoopLag = await scrapeEventLoopLag(baseUrl, scrapes);
  return { login, profileDuringLogin, profileRate: probeRate, eventLoopLag, errorSamples };
}
