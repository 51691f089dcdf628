import { ME_CONNECTIONS } from './fairness-phase.js';
import { load, type LoadSummary } from './load.js';

/** `GET /users/me` alone on ME_CONNECTIONS connections: access-token verification plus the session check (cached) and the profile read. */
export function runUsersMePhase(opts: { baseUrl: string; accessToken: string; duration: number }): Promise<LoadSummary> {
  return load({
    url: `${opts.baseUrl}/users/me`,
    connections: ME_CONNECTIONS,
    duration: opts.duration,
    headers: { authorization: `Bearer ${opts.accessToken}` },
  });
}
