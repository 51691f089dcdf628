import { getOnNewConnection } from './http.js';

export interface EventLoopLag {
  /** The largest event-loop delay any scraped worker saw: the worst stall. */
  maxMs: number;
  /** The largest of the workers' 99th-percentile delays. */
  p99Ms: number;
  scrapes: number;
}

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`GET /metrics has no ${name}`);
  return Number(m[1]) * 1000;
}

/**
 * Event-loop stalls of the server processes, from their Prometheus metrics.
 *
 * The server's prom-client default metrics sample event-loop delay with 1 ms
 * resolution; `nodejs_eventloop_lag_max_seconds` (and `_p99_seconds`) cover
 * the time since that process's previous scrape: the histogram resets on
 * every scrape. Under Node cluster one scrape reaches one worker, handed out
 * round-robin per new TCP connection, so we scrape `2 × workers` times over
 * fresh connections right before a phase (resetting every worker's histogram)
 * and `2 × workers` times right after it; the largest value seen after the
 * phase is the worst stall of any worker during the phase. (The primary serves
 * no HTTP, so it is not covered; it only hands connections to workers.) The
 * values include the 1 ms sampling interval, and time the thread was ready
 * but not given a core.
 */
export async function scrapeEventLoopLag(baseUrl: string, scrapes: number): Promise<EventLoopLag> {
  const lag: EventLoopLag = { maxMs: 0, p99Ms: 0, scrapes };
  for (let i = 0; i < scrapes; i++) {
    const { status, text } = await getOnNewConnection(`${baseUrl}/metrics`);
    if (status !== 200) throw new Error(`GET /metrics answered ${status}`);
    lag.maxMs = Math.max(lag.maxMs, gauge(text, 'nodejs_eventloop_lag_max_seconds'));
    lag.p99Ms = Math.max(lag.p99Ms, gauge(text, 'nodejs_eventloop_lag_p99_seconds'));
  }
  return lag;
}
