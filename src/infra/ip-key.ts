import { isIPv4, isIPv6 } from 'node:net';

/**
 * The unit a per-IP limit counts: an IPv4 address as it is, an IPv4-mapped
 * IPv6 address as its IPv4, any other IPv6 address as its /64 (one customer's
 * allocation: rotating addresses inside it changes nothing).
 */
export function ipKey(ip: string | null | undefined): string {
  if (!ip) return 'unknown';
  const bare = ip
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '')
    .toLowerCase();
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return bare;
  const mapped = /^(?:0{0,4}:){0,5}ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare.replace(/^::/, '0::'));
  if (mapped?.[1] && isIPv4(mapped[1])) return mapped[1];
  const [head = '', tail = ''] = bare.includes('::') ? bare.split('::') : [bare, ''];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::1.2.3.4) is two groups; only the first four groups matter here anyway.
  const rightGroups = right.flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const groups = bare.includes('::')
    ? [...left, ...Array.from({ length: Math.max(0, 8 - left.length - rightGroups.length) }, () => '0'), ...rightGroups]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
