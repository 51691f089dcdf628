import type { FastifyError } from 'fastify';
import type { FieldError } from '../errors.js';

/** One ajv error as Fastify hands it over (`err.validation`). */
interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
}

const typeNames: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

const formatNames: Record<string, string> = {
  uuid: 'a UUID',
  'date-time': 'a date and time (RFC 3339, e.g. 2026-01-15T12:00:00Z)',
  email: 'an email address',
  uri: 'a URL',
};

const orList = (items: string[]) => (items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`);
const plural = (n: unknown, word: string) => `${String(n)} ${word}${n === 1 ? '' : 's'}`;

/** What is wrong with one field, in words for a person (the field name is in `field`, not here). */
function describe(e: SchemaError): string {
  const p = e.params;
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'type':
      return `must be ${orList(
        String(p.type)
          .split(',')
          .map((t) => typeNames[t] ?? t),
      )}`;
    case 'minLength':
      return p.limit === 1 ? 'must not be empty' : `must be at least ${plural(p.limit, 'character')} long`;
    case 'maxLength':
      return `must be at most ${plural(p.limit, 'character')} long`;
    case 'minimum':
    case 'exclusiveMinimum':
      return `must be at least ${String(p.limit)}`;
    case 'maximum':
    case 'exclusiveMaximum':
      return `must be at most ${String(p.limit)}`;
    case 'minItems':
      return `must have at least ${plural(p.limit, 'item')}`;
    case 'maxItems':
      return `must have at most ${plural(p.limit, 'item')}`;
    case 'format':
      return `must be ${formatNames[String(p.format)] ?? `in the ${String(p.format)} format`}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'enum':
      return `must be one of ${orList((p.allowedValues as unknown[]).map((v) => JSON.stringify(v)))}`;
    case 'pattern':
      return 'is not in the expected format';
    default:
      return 'is not valid';
  }
}

/** The message of one field from all its errors: a broken constraint first, then the accepted types or values of a union. */
function describeField(errors: [SchemaError, ...SchemaError[]]): string {
  const specific = errors.find((e) => !['type', 'const', 'anyOf', 'oneOf'].includes(e.keyword));
  if (specific) return describe(specific);
  const consts = errors.filter((e) => e.keyword === 'const').map((e) => JSON.stringify(e.params.allowedValue));
  if (consts.length > 1) return `must be one of ${orList(consts)}`;
  const types = [...new Set(errors.filter((e) => e.keyword === 'type').flatMap((e) => String(e.params.type).split(',')))];
  if (types.length) return describe({ keyword: 'type', instancePath: '', params: { type: types.join(',') } });
  return describe(errors[0]);
}

/**
 * `details` of a validation failure: one `{field, message}` per field, `field` a
 * dotted path (`email`, `roles.0`) or the part as a whole (`body`, `querystring`).
 */
export function validationDetails(err: FastifyError): FieldError[] {
  const byField = new Map<string, [SchemaError, ...SchemaError[]]>();
  for (const v of (err.validation ?? []) as SchemaError[]) {
    const missing = v.keyword === 'required' ? (v.params.missingProperty as string | undefined) : undefined;
    const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const field = [path, missing].filter(Boolean).join('.') || (err.validationContext ?? 'body');
    const same = byField.get(field);
    if (same) same.push(v);
    else byField.set(field, [v]);
  }
  return [...byField].map(([field, errors]) => {
    const whole = ['body', 'querystring', 'params', 'headers'].includes(field);
    if (whole && errors.some((e) => e.keyword === 'type')) {
      return { field, message: field === 'body' ? 'must be a JSON object or a form (application/x-www-form-urlencoded)' : 'must be an object' };
    }
    return { field, message: describeField(errors) };
  });
}

/** The first failure as one sentence: `message`, or OAuth2's `error_description` (which speaks of parameters). */
export function validationSentence(details: FieldError[], noun: 'field' | 'parameter'): string {
  const first = details[0];
  if (!first) return 'The request is invalid.';
  if (first.field === 'body') return `The request body ${first.message}.`;
  if (noun === 'parameter')
    return first.message === 'is required' ? `Missing parameter: ${first.field}.` : `Invalid parameter: ${first.field} ${first.message}.`;
  return `${first.field} ${first.message}.`;
}
