import autocannon, { type Options, type Result } from 'autocannon';

export interface LoadSummary {
  /** 2xx responses per second over the phase. */
  okPerSecond: number;
  ok: number;
  non2xx: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Requests the load tool gave up on (no answer within its timeout); also counted in `errors`. */
  timeouts: number;
  p50Ms: number;
  p99Ms: number;
  statusCodes: Record<string, number>;
}

export function summarise(r: Result): LoadSummary {
  return {
    okPerSecond: r['2xx'] / r.duration,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
  };
}

/** One autocannon run (127.0.0.1 only, fixed duration). */
export async function load(options: Options): Promise<LoadSummary> {
  if (new URL(options.url).hostname !== '127.0.0.1') throw new Error(`refusing to load ${options.url}: 127.0.0.1 only`);
  return summarise(await autocannon(options));
}
