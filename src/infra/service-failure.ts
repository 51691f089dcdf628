/**
 * Why a connection to Redis or an SMTP server failed, in one short phrase a
 * person can act on (refused, DNS, timeout, authentication, TLS), never the
 * client library's stack or a password.
 */
const networkCauses: Record<string, string> = {
  ECONNREFUSED: 'connection refused (ECONNREFUSED): is it running, on this host and port?',
  ENOTFOUND: 'host not found (ENOTFOUND): check the host name',
  EAI_AGAIN: 'host name lookup failed (EAI_AGAIN): check the host name and DNS',
  ETIMEDOUT: 'connection timed out (ETIMEDOUT): a firewall, or the wrong host?',
  EHOSTUNREACH: 'host unreachable (EHOSTUNREACH)',
  ECONNRESET: 'the connection was reset (ECONNRESET): TLS expected on one side only?',
};

const authFailed = /WRONGPASS|NOAUTH|invalid username-password|Invalid login|authentication (failed|unsuccessful|required)|\b535\b/i;
const tlsFailed = /certificate|SSL|TLS|wrong version number|EPROTO/i;

/** TLS spoken on one side only: the server answered a TLS handshake in plain text (or the reverse). */
const tlsOneSide = /wrong version number|packet length too long|unknown protocol|http request|unexpected eof|STARTTLS/i;

/**
 * OpenSSL's messages carry an error code, a function and a source file
 * ("80BC…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/…"):
 * the reason is what a person needs, with what usually causes it.
 */
function tlsFailure(message: string): string {
  const reason = (/SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message).slice(0, 160);
  if (tlsOneSide.test(reason))
    return `TLS failed (${reason}): TLS on one side only? (SMTP_SECURE=true and rediss:// speak TLS from the first byte: port 465, or a Redis TLS port; SMTP on 587 or 25 upgrades with STARTTLS)`;
  return `TLS failed (${reason}): is the certificate valid for this host name, and trusted here?`;
}

export function describeServiceFailure(err: unknown): string {
  let first = '';
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const raw = (e as { message?: unknown }).message;
    const message = typeof raw === 'string' ? raw.replace(/\s+/g, ' ').trim() : '';
    if (!first) first = message;
    // nodemailer wraps the socket's code in its message (ECONNECTION / EDNS: "connect ECONNREFUSED …").
    const named = Object.keys(networkCauses).find((c) => code === c || new RegExp(`\\b${c}\\b`).test(message));
    if (named) return networkCauses[named] ?? named;
    if (code === 'EAUTH' || authFailed.test(message)) return `authentication failed (${message.slice(0, 120)}): check the user name and password`;
    if (code === 'ETLS' || tlsFailed.test(message)) return tlsFailure(message);
    if (/timeout|Greeting never received/i.test(message)) return `no answer in time (${message.slice(0, 80)}): a firewall, or the wrong host or port?`;
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length) return describeServiceFailure(inner[0]);
  }
  return (first || String(err)).slice(0, 200);
}
