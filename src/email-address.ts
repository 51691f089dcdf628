import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * The one canonical form of an email address, or null when it is not a plain
 * `local@domain` (docs/security.md, "Threat model › Metrics and email addresses").
 *
 * - Local part: a dot-atom (RFC 5322 atext, or Unicode letters, marks and digits),
 *   folded with NFKC and lower-cased: no quotes, comments, display names, spaces,
 *   invisible (default-ignorable) letters,
 *   leading, trailing or double dots; at most 64 bytes; one script (below).
 * - Domain: UTS-46 (`domainToASCII`: fullwidth and other compatibility forms fold,
 *   invalid labels are refused) and stored as ASCII (punycode), the form the SMTP
 *   envelope carries; letter-digit-hyphen labels of at most 63, at least two of
 *   them, no trailing dot, not an IP address, at most 253 characters; each label,
 *   in its Unicode form, made of letters, marks, digits and hyphens of one script.
 *
 * The canonical form is a fixed point: canonicalEmail(canonicalEmail(x)) === canonicalEmail(x).
 */
export function canonicalEmail(raw: string): string | null {
  const trimmed = raw.trim();
  // Invisible and separator characters inside an address are refused, never silently dropped.
  if (/[\p{C}\p{Z}]/u.test(trimmed)) return null;
  const parts = trimmed.split('@');
  if (parts.length !== 2) return null;
  const local = canonicalLocalPart(parts[0] ?? '');
  const domain = canonicalDomain(parts[1] ?? '');
  if (local === null || domain === null) return null;
  const email = `${local}@${domain}`;
  return Buffer.byteLength(email, 'utf8') <= 254 ? email : null;
}

const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;
const ATOM = /^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]|[\p{L}\p{M}\p{N}])+$/u;

function canonicalLocalPart(local: string): string | null {
  const folded = local.normalize('NFKC').toLowerCase().normalize('NFKC');
  if (folded === '' || Buffer.byteLength(folded, 'utf8') > 64) return null;
  // Letters that show nothing (Hangul fillers U+115F/U+1160/U+3164/U+FFA0, Khmer U+17B4 …): `admin<filler>@` looks like `admin@`.
  if (INVISIBLE.test(folded)) return null;
  if (!folded.split('.').every((atom) => ATOM.test(atom))) return null;
  return oneScript(folded) ? folded : null;
}

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const UNICODE_LABEL = /^[\p{L}\p{M}\p{N}-]+$/u;

function canonicalDomain(domain: string): string | null {
  // ASCII other than letters, digits, dots and hyphens never reaches UTS-46 (which would, e.g., percent-decode).
  if (/[\0-,/:-@[-`{-\x7f]/.test(domain)) return null;
  const ascii = domainToASCII(domain);
  if (ascii === '' || ascii.length > 253 || ascii.endsWith('.')) return null;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((l) => LDH_LABEL.test(l))) return null;
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return null;
  return domainToUnicode(ascii)
    .split('.')
    .every((label) => UNICODE_LABEL.test(label) && oneScript(label))
    ? ascii
    : null;
}

// The scripts told apart; a letter of any other script counts as "other" (which mixes with none).
const SCRIPTS = [
  'Latin',
  'Greek',
  'Cyrillic',
  'Armenian',
  'Hebrew',
  'Arabic',
  'Syriac',
  'Thaana',
  'Nko',
  'Devanagari',
  'Bengali',
  'Gurmukhi',
  'Gujarati',
  'Oriya',
  'Tamil',
  'Telugu',
  'Kannada',
  'Malayalam',
  'Sinhala',
  'Thai',
  'Lao',
  'Tibetan',
  'Myanmar',
  'Georgian',
  'Hangul',
  'Ethiopic',
  'Cherokee',
  'Canadian_Aboriginal',
  'Ogham',
  'Runic',
  'Khmer',
  'Mongolian',
  'Hiragana',
  'Katakana',
  'Bopomofo',
  'Han',
  'Yi',
  'Tifinagh',
  'Coptic',
  'Glagolitic',
  'Vai',
  'Javanese',
  'Balinese',
  'Sundanese',
  'Tai_Le',
  'Lisu',
] as const;
const SCRIPT_PATTERNS = SCRIPTS.map((name) => [name, new RegExp(`^\\p{Script=${name}}$`, 'u')] as const);
const NEUTRAL = /^[\p{Script=Common}\p{Script=Inherited}]$/u;

/** The scripts of the characters of `text`, Common and Inherited (digits, hyphen, combining marks) left out. */
export function scriptsOf(text: string): Set<string> {
  const found = new Set<string>();
  for (const ch of text) {
    if (NEUTRAL.test(ch)) continue;
    found.add(SCRIPT_PATTERNS.find(([, re]) => re.test(ch))?.[0] ?? 'other');
  }
  return found;
}

// UTS #39 "highly restrictive": one script, or one of the mixes a language writes in.
const ALLOWED_MIXES: ReadonlyArray<ReadonlySet<string>> = [
  new Set(['Latin', 'Han', 'Hiragana', 'Katakana']),
  new Set(['Latin', 'Han', 'Bopomofo']),
  new Set(['Latin', 'Han', 'Hangul']),
];

/** No mixed-script lookalikes: `pаypal` with a Cyrillic `а` is refused; `例え`, `münchen`, `пример` are fine. */
function oneScript(text: string): boolean {
  const scripts = [...scriptsOf(text)];
  return scripts.length <= 1 || ALLOWED_MIXES.some((mix) => scripts.every((s) => mix.has(s)));
}
