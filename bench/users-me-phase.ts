import { load, type LoadSummary } from './load.js';

/** `GET /users/me` alone: access-token verification plus one session lookup per request. */
export function runUsersMePhase(opts: { baseUrl: string; accessToken: string; connections: number; duration: number }): Promise<LoadSummary> {
  return load({
    url: `${opts.baseUrl}/users/me`,
    connections: opts.connections,
    duration: opts.duration,
    headers: { authorization: `Bearer ${opts.accessToken}` },
  });
}
