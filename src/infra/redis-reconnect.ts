/**
 * An ioredis `retryStrategy` whose wait between two attempts to reach Redis again
 * never exceeds `maxDelayMs` (REDIS_RECONNECT_MAX_DELAY_MS): 50 ms, 100 ms, 200 ms …
 * up to the bound, each shortened by up to a fifth at random so that the connections
 * of many processes do not knock all at once. ioredis's own default grows to 5 s,
 * BullMQ's to 20 s: mail would wait that long after Redis is back. A refused
 * connection costs Redis (or the network) nearly nothing, so the bound can be short.
 */
export function reconnectWithin(maxDelayMs: number): (times: number) => number {
  return (times) => Math.max(1, Math.round(Math.min(50 * 2 ** Math.min(times - 1, 20), maxDelayMs) * (0.8 + Math.random() * 0.2)));
}
