import { load, type LoadSummary } from './load.js';
import type { SeedUser } from './seed.js';

/** Connections of every `/users/me` load phase (the harness of issue 18). */
export const ME_CONNECTIONS = 32;

export interface FairnessResult {
  login: LoadSummary;
  me: LoadSummary;
  /** A few non-2xx login bodies (a 503 when a hash would have waited past BCRYPT_MAX_WAIT_MS). */
  errorSamples: string[];
}

/**
 * Both loads at once, each saturating on its own: password logins on
 * `connections` connections and `GET /users/me` on ME_CONNECTIONS. Shows how the
 * CPU is shared under overload (docs/operations.md, "Hashing under overload"):
 * logins/s ÷ the bcrypt limit (target ≥ 0.4), the `/users/me` p99 (target < 50 ms),
 * and no timeout on either side (a login that would wait too long gets a 503 at once).
 */
export async function runFairnessPhase(opts: {
  baseUrl: string;
  users: SeedUser[];
  accessToken: string;
  connections: number;
  duration: number;
}): Promise<FairnessResult> {
  const bodies = opts.users.map((u) => new URLSearchParams({ grant_type: 'password', username: u.email, password: u.password }).toString());
  let next = 0;
  const errorSamples: string[] = [];
  const [login, me] = await Promise.all([
    load({
      url: opts.baseUrl,
      connections: opts.connections,
      duration: opts.duration,
      // A client's patience: 10 s (autocannon's default); the server must answer before.
      timeout: 10,
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
    load({
      url: `${opts.baseUrl}/users/me`,
      connections: ME_CONNECTIONS,
      duration: opts.duration,
      timeout: 10,
      headers: { authorization: `Bearer ${opts.accessToken}` },
    }),
  ]);
  return { login, me, errorSamples };
}
