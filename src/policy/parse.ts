/**
 * Kubernetes `networking.k8s.io/v1` NetworkPolicy files, read the way `kubectl apply -f` and the
 * apiserver read them: YAML (one or many documents, `kind: List`, `kind: NetworkPolicyList`),
 * strict field decoding (an unknown field is an error, so a typo never silently widens or narrows a
 * policy), the apiserver's validation (kubernetes pkg/apis/networking/validation
 * `ValidateNetworkPolicy`, with apimachinery's label, name and CIDR rules) and its defaulting
 * (pkg/apis/networking/v1/defaults.go). The result is the normalized `NetworkPolicySpec` of
 * ./types.ts: every default filled in, CIDRs canonical.
 *
 * Messages follow the apiserver's field.Error style, one line each:
 *   policies.yaml: document 2 (NetworkPolicy "db"): spec.ingress[0].ports[1].endPort: Invalid value: 70: must be greater than or equal to `port`
 *
 * Where weft is stricter or looser than the apiserver, the comment at the rule says why.
 */
import { parseAllDocuments, isScalar, type Tags } from 'yaml';
import { containsCidr, formatCidr, parseIp, prefixMask, type Cidr } from '../ipam/cidr.js';
import {
  POLICY_PROTOCOLS,
  type EgressRule,
  type IngressRule,
  type IpBlock,
  type LabelSelector,
  type LabelSelectorRequirement,
  type NetworkPolicySpec,
  type PolicyPeer,
  type PolicyPort,
  type PolicyProtocol,
  type PolicyType,
  type SelectorOperator,
} from './types.js';

export const POLICY_API_VERSION = 'networking.k8s.io/v1';
export const POLICY_KIND = 'NetworkPolicy';

export interface PolicyDocument {
  name: string;
  /** metadata.namespace when the file sets one; the caller defaults it */
  namespace?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: NetworkPolicySpec;
  /** 1-based document index in the file, for messages */
  doc: number;
}

/** Every problem found, each one line; `message` is the same lines joined by newlines. */
export class PolicyParseError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('\n'));
    this.name = 'PolicyParseError';
  }
}

// ---------------------------------------------------------------------------------------------
// apimachinery's string rules (k8s.io/apimachinery/pkg/api/validate/content, util/validation)

const LABEL_KEY_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_KEY_RE = new RegExp(`^${LABEL_KEY_FMT}$`);
const LABEL_VALUE_FMT = `(${LABEL_KEY_FMT})?`;
const LABEL_VALUE_RE = new RegExp(`^${LABEL_VALUE_FMT}$`);
const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_LABEL_RE = new RegExp(`^${DNS1123_LABEL_FMT}$`);
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
/** Regexes are not run on absurdly long input (already an error by length): no slow backtracking. */
const REGEX_INPUT_LIMIT = 4096;

/** apimachinery's RegexError, byte for byte, so messages can be searched for. */
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (!examples.length) return `${msg} (regex used for validation is '${fmt}')`;
  let out = `${msg} (e.g. `;
  examples.forEach((e, i) => {
    if (i > 0) out += ' or ';
    out += `'${e}', `;
  });
  return `${out}regex used for validation is '${fmt}')`;
}
const maxLenError = (n: number): string => `must be no more than ${n} characters`;
const matches = (re: RegExp, s: string): boolean => s.length <= REGEX_INPUT_LIMIT && re.test(s);

/** Why `value` is not a DNS-1123 subdomain (at most 253 characters), or []. */
export function dns1123SubdomainErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push(maxLenError(253));
  if (!matches(DNS1123_SUBDOMAIN_RE, value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN_FMT,
        'example.com',
      ),
    );
  }
  return errs;
}

/** Why `value` is not a DNS-1123 label (at most 63 characters, no dots), or []. */
export function dns1123LabelErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!matches(DNS1123_LABEL_RE, value)) {
    if (matches(DNS1123_SUBDOMAIN_RE, value)) errs.push('must not contain dots');
    else {
      errs.push(
        regexError(
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
          DNS1123_LABEL_FMT,
          'my-name',
          '123-abc',
        ),
      );
    }
  }
  return errs;
}

/**
 * Why `key` is not a label key (Kubernetes "qualified name"): an optional DNS-1123-subdomain
 * prefix and "/", then a name of at most 63 characters. [] when valid.
 */
export function labelKeyErrors(key: string): string[] {
  const nameMsg = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  const errs: string[] = [];
  const parts = key.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0];
  } else if (parts.length === 2) {
    const prefix = parts[0];
    name = parts[1];
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...dns1123SubdomainErrors(prefix).map((m) => `prefix part ${m}`));
  } else {
    return [
      `a valid label key ${regexError(nameMsg, LABEL_KEY_FMT, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!matches(LABEL_KEY_RE, name)) errs.push(`name part ${regexError(nameMsg, LABEL_KEY_FMT, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

/** Why `value` is not a label value (at most 63 characters, may be empty). [] when valid. */
export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!matches(LABEL_VALUE_RE, value)) {
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        LABEL_VALUE_FMT,
        'MyValue',
        'my_value',
        '12345',
      ),
    );
  }
  return errs;
}

export const validLabelKey = (key: string): boolean => labelKeyErrors(key).length === 0;
export const validLabelValue = (value: string): boolean => labelValueErrors(value).length === 0;

/** IANA_SVC_NAME (RFC 6335) as apimachinery's IsValidPortName checks it. [] when valid. */
export function portNameErrors(port: string): string[] {
  const errs: string[] = [];
  if (port.length > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(port)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(port)) errs.push('must contain at least one letter (a-z)');
  if (port.includes('--')) errs.push('must not contain consecutive hyphens');
  if (port.length > 0 && (port.startsWith('-') || port.endsWith('-'))) errs.push('must not begin or end with a hyphen');
  return errs;
}

// ---------------------------------------------------------------------------------------------
// CIDRs: apimachinery's IsValidCIDRForLegacyField with strict validation, the StrictIPCIDRValidation
// behaviour (beta and on by default since Kubernetes 1.36): no leading zeros, no IPv4-mapped IPv6,
// no bits set beyond the prefix length. Older apiservers accepted "10.1.2.3/8" as 10.0.0.0/8;
// weft refuses it like current ones do, because the writer may as well have meant 10.1.2.3/32.

interface CidrCheck {
  /** the network, if Go's sloppy parser would read the text at all */
  net?: Cidr;
  /** why the text is refused (strict rules), when it is */
  error?: string;
}

const IPV4_SLOPPY = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function checkCidr(text: string): CidrCheck {
  const invalid = { error: 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)' };
  const slash = text.indexOf('/');
  if (slash < 0 || slash !== text.lastIndexOf('/')) return invalid;
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,4}$/.test(prefixText)) return invalid;
  let leadingZeros = prefixText.length > 1 && prefixText.startsWith('0');
  let family: 4 | 6;
  let value: bigint;
  const v4 = IPV4_SLOPPY.exec(addrText);
  if (v4) {
    family = 4;
    value = 0n;
    for (const octet of v4.slice(1)) {
      if (Number(octet) > 255) return invalid;
      if (octet.length > 1 && octet.startsWith('0')) leadingZeros = true;
      value = (value << 8n) | BigInt(Number(octet));
    }
  } else if (addrText.includes(':')) {
    try {
      const ip = parseIp(addrText);
      if (ip.family !== 6) return invalid;
      family = 6;
      value = ip.value;
    } catch {
      return invalid;
    }
    // an embedded IPv4 part with leading zeros ("::ffff:010.1.2.3")
    const tail = addrText.slice(addrText.lastIndexOf(':') + 1);
    if (tail.includes('.') && tail.split('.').some((o) => o.length > 1 && o.startsWith('0'))) leadingZeros = true;
  } else {
    return invalid;
  }
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return invalid;
  const network = value & prefixMask(family, prefix);
  const net: Cidr = { family, network, prefix };
  if (leadingZeros) return { net, error: 'must not have leading 0s in IP or prefix length' };
  if (family === 6 && value >> 32n === 0xffffn) return { net, error: 'must not have an IPv4-mapped IPv6 address' };
  if (network !== value) {
    const single = formatCidr({ family, network: value, prefix: family === 4 ? 32 : 128 });
    return {
      net,
      error: `must not have bits set beyond the prefix length (write "${formatCidr(net)}" for the network or "${single}" for the one address)`,
    };
  }
  return { net };
}

// ---------------------------------------------------------------------------------------------
// field paths and errors (apimachinery's field.Path / field.Error wording)

const child = (p: string, name: string): string => (p ? `${p}.${name}` : name);
const index = (p: string, i: number): string => `${p}[${i}]`;
const key = (p: string, k: string): string => `${p}[${k}]`;

type Obj = Record<string, unknown>;
/** A plain mapping (what YAML maps and JSON objects decode to), not a list, date or byte array. */
function isObj(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'array';
  if (ArrayBuffer.isView(v)) return 'binary';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (isObj(v)) return 'object';
  return typeof v;
}

/** A bad value as Go's field.Error prints it: strings quoted, numbers bare, null. */
function show(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? JSON.stringify(v) : '[...]';
  return '{...}';
}

/** Edit distance counting a swap of two neighbours as one edit, for "did you mean" on unknown fields. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

class Issues {
  readonly list: string[] = [];
  get count(): number {
    return this.list.length;
  }
  private push(path: string, body: string): void {
    this.list.push(path ? `${path}: ${body}` : body);
  }
  invalid(path: string, value: unknown, detail: string): void {
    this.push(path, `Invalid value: ${show(value)}${detail ? `: ${detail}` : ''}`);
  }
  required(path: string, detail = ''): void {
    this.push(path, `Required value${detail ? `: ${detail}` : ''}`);
  }
  forbidden(path: string, detail: string): void {
    this.push(path, `Forbidden: ${detail}`);
  }
  notSupported(path: string, value: unknown, supported: readonly string[]): void {
    this.push(path, `Unsupported value: ${show(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`);
  }
  tooLong(path: string, max: number): void {
    this.push(path, `Too long: must have at most ${max} bytes`);
  }
  /** a value of the wrong JSON type (the apiserver's decoder refuses these before validating) */
  type(path: string, value: unknown, want: string, hint = ''): void {
    this.invalid(path, value, `must be of type ${want}, not ${typeName(value)}${hint ? ` (${hint})` : ''}`);
  }
  /** kubectl's strict field validation: `unknown field "spec.ingress[0].form"` */
  unknown(path: string, name: string, known: readonly string[]): void {
    const best = known
      .map((k) => ({ k, d: distance(name.toLowerCase(), k.toLowerCase()) }))
      .filter((x) => x.d <= (x.k.length <= 3 ? 1 : 2))
      .sort((a, b) => a.d - b.d)[0];
    this.list.push(`unknown field ${JSON.stringify(path)}${best ? ` (did you mean "${best.k}"?)` : ''}`);
  }
}

/** Reports fields of `obj` that are neither known nor deliberately ignored. */
function checkFields(obj: Obj, path: string, known: readonly string[], I: Issues, ignored: readonly string[] = []): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k) && !ignored.includes(k)) I.unknown(child(path, k), k, known);
  }
}

/** An object field: undefined when absent or null (Go's nil), reported when of another type. */
function asObject(v: unknown, path: string, I: Issues): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObj(v)) return v;
  I.type(path, v, 'object');
  return undefined;
}

function asString(v: unknown, path: string, I: Issues, hint = ''): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  I.type(path, v, 'string', hint || (typeof v === 'number' || typeof v === 'boolean' ? `quote it: "${String(v)}"` : ''));
  return undefined;
}

/** A list field: [] when absent or null, reported when of another type. */
function asList(v: unknown, path: string, I: Issues, hint = ''): unknown[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  I.type(path, v, 'array', hint);
  return [];
}

/**
 * Items of a list of objects. Deviation: the apiserver decodes a null item (`- ` with nothing
 * after it) as an empty struct, so `ingress: [null]` allows everything and `ports: [null]` means
 * every TCP port; weft refuses null items, since an empty item is more often an editing slip than
 * a wish to allow everything. Write `- {}` for an empty rule.
 */
function objectItems<T>(v: unknown, path: string, I: Issues, each: (item: Obj, path: string) => T): T[] {
  const out: T[] = [];
  asList(v, path, I).forEach((item, i) => {
    const p = index(path, i);
    if (item === null || item === undefined) {
      I.invalid(p, null, 'an empty list item is not allowed (write {} for an empty item)');
    } else if (!isObj(item)) {
      I.type(p, item, 'object');
    } else {
      out.push(each(item, p));
    }
  });
  return out;
}

/** A map of strings (labels, annotations, matchLabels), type-checked; not yet validated. */
function stringMap(v: unknown, path: string, I: Issues): Record<string, string> {
  const obj = asObject(v, path, I);
  const out: Record<string, string> = {};
  if (!obj) return out;
  for (const [k, val] of Object.entries(obj)) {
    // Deviation: Go decodes `app: ~` (or `app:` with nothing) as "", the empty value; weft asks
    // for "" explicitly, since a dropped value is more often a slip than a wish for app="".
    if (val === null || val === undefined) {
      I.type(key(path, k), null, 'string', 'write "" for an empty value');
      continue;
    }
    const s = asString(val, key(path, k), I);
    if (s !== undefined) Object.defineProperty(out, k, { value: s, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** apimachinery ValidateLabels: every key a qualified name, every value a label value. */
function validateLabels(labels: Record<string, string>, path: string, I: Issues): void {
  for (const [k, v] of Object.entries(labels)) {
    for (const msg of labelKeyErrors(k)) I.invalid(path, k, msg);
    for (const msg of labelValueErrors(v)) I.invalid(path, v, msg);
  }
}

// ---------------------------------------------------------------------------------------------
// label selectors (apimachinery meta/v1 validation ValidateLabelSelector)

const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** A label selector, or undefined when absent/null; `{}` gives the empty (select-all) selector. */
function normSelector(v: unknown, path: string, I: Issues): LabelSelector | undefined {
  const obj = asObject(v, path, I);
  if (!obj) return undefined;
  checkFields(obj, path, ['matchLabels', 'matchExpressions'], I);
  const mlPath = child(path, 'matchLabels');
  const matchLabels = stringMap(obj.matchLabels, mlPath, I);
  validateLabels(matchLabels, mlPath, I);
  const matchExpressions = objectItems(obj.matchExpressions, child(path, 'matchExpressions'), I, (req, p) => {
    checkFields(req, p, ['key', 'operator', 'values'], I);
    const k = asString(req.key, child(p, 'key'), I);
    const op = asString(req.operator, child(p, 'operator'), I);
    const valuesPath = child(p, 'values');
    const values: string[] = [];
    asList(req.values, valuesPath, I).forEach((x, i) => {
      const s = asString(x, index(valuesPath, i), I);
      if (s === undefined) {
        if (x === null || x === undefined) I.type(index(valuesPath, i), x, 'string');
        return;
      }
      values.push(s);
    });
    if (req.operator === undefined || req.operator === null) {
      I.required(child(p, 'operator'), `supported values: ${OPERATORS.map((o) => JSON.stringify(o)).join(', ')}`);
    } else if (op !== undefined) {
      if (op === 'In' || op === 'NotIn') {
        if (!values.length) I.required(valuesPath, "must be specified when `operator` is 'In' or 'NotIn'");
      } else if (op === 'Exists' || op === 'DoesNotExist') {
        if (values.length) I.forbidden(valuesPath, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
      } else {
        I.notSupported(child(p, 'operator'), op, OPERATORS);
      }
    }
    if (req.key === undefined || req.key === null) I.required(child(p, 'key'));
    else if (k !== undefined) for (const msg of labelKeyErrors(k)) I.invalid(child(p, 'key'), k, msg);
    values.forEach((val, i) => {
      for (const msg of labelValueErrors(val)) I.invalid(index(valuesPath, i), val, msg);
    });
    return { key: k ?? '', operator: (op ?? 'In') as SelectorOperator, values } satisfies LabelSelectorRequirement;
  });
  return { matchLabels, matchExpressions };
}

const emptySelector = (): LabelSelector => ({ matchLabels: {}, matchExpressions: [] });

/**
 * Validates and normalizes a metav1.LabelSelector given as plain data (absent or null gives the
 * empty selector, which selects everything). `path` names it in the issues.
 */
export function validateLabelSelector(value: unknown, path = 'selector'): { selector: LabelSelector; issues: string[] } {
  const I = new Issues();
  const selector = normSelector(value, path, I) ?? emptySelector();
  return { selector, issues: I.list };
}

// ---------------------------------------------------------------------------------------------
// the spec (ValidateNetworkPolicySpec, ValidateNetworkPolicyPort, ValidateNetworkPolicyPeer,
// ValidateIPBlock; defaults from SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort)

function normPort(obj: Obj, p: string, I: Issues): PolicyPort {
  checkFields(obj, p, ['protocol', 'port', 'endPort'], I);
  const out: PolicyPort = { protocol: 'TCP' };
  const protocol = asString(obj.protocol, child(p, 'protocol'), I);
  if (protocol !== undefined) {
    // the apiserver's order: TCP, UDP, SCTP (case matters: "tcp" is refused)
    if ((POLICY_PROTOCOLS as readonly string[]).includes(protocol)) out.protocol = protocol as PolicyProtocol;
    else I.notSupported(child(p, 'protocol'), protocol, POLICY_PROTOCOLS);
  }
  const portPath = child(p, 'port');
  const endPath = child(p, 'endPort');
  let port: number | string | undefined;
  if (typeof obj.port === 'number' && Number.isInteger(obj.port)) port = obj.port;
  else if (typeof obj.port === 'string') port = obj.port;
  else if (obj.port !== undefined && obj.port !== null) I.type(portPath, obj.port, 'integer or string');
  let endPort: number | undefined;
  if (typeof obj.endPort === 'number' && Number.isInteger(obj.endPort)) endPort = obj.endPort;
  else if (obj.endPort !== undefined && obj.endPort !== null) I.type(endPath, obj.endPort, 'integer');

  const portGiven = obj.port !== undefined && obj.port !== null;
  if (typeof port === 'number') {
    if (port < 1 || port > 65535) I.invalid(portPath, port, 'must be between 1 and 65535, inclusive');
    if (endPort !== undefined) {
      if (endPort < port) I.invalid(endPath, endPort, 'must be greater than or equal to `port`');
      if (endPort < 1 || endPort > 65535) I.invalid(endPath, endPort, 'must be between 1 and 65535, inclusive');
    }
  } else if (typeof port === 'string') {
    if (endPort !== undefined) I.invalid(endPath, endPort, 'may not be specified when `port` is non-numeric');
    for (const msg of portNameErrors(port)) {
      // `port: "80"` is a (bad) port name in Kubernetes too; say how to write the number
      const hint = /^\d+$/.test(port) && msg.includes('at least one letter') ? ` (a port number must not be quoted: port: ${Number(port)})` : '';
      I.invalid(portPath, port, msg + hint);
    }
  } else if (!portGiven && endPort !== undefined) {
    I.invalid(endPath, endPort, 'may not be specified when `port` is not specified');
  }
  if (port !== undefined) out.port = port;
  if (endPort !== undefined) out.endPort = endPort;
  return out;
}

function normIpBlock(v: unknown, p: string, I: Issues): IpBlock | undefined {
  const obj = asObject(v, p, I);
  if (!obj) return undefined;
  checkFields(obj, p, ['cidr', 'except'], I);
  const cidrPath = child(p, 'cidr');
  const exceptPath = child(p, 'except');
  const cidr = asString(obj.cidr, cidrPath, I);
  const exceptRaw = asList(obj.except, exceptPath, I);
  const out: IpBlock = { cidr: cidr ?? '', except: [] };
  if (cidr === undefined || cidr === '') {
    if (obj.cidr === undefined || obj.cidr === null || cidr === '') I.required(cidrPath);
    return out;
  }
  const outer = checkCidr(cidr);
  if (outer.error) I.invalid(cidrPath, cidr, outer.error);
  if (!outer.net) return out;
  out.cidr = formatCidr(outer.net);
  exceptRaw.forEach((x, i) => {
    const ep = index(exceptPath, i);
    const text = asString(x, ep, I);
    if (text === undefined) {
      if (x === null || x === undefined) I.type(ep, x, 'string');
      return;
    }
    const inner = checkCidr(text);
    if (inner.error) I.invalid(ep, text, inner.error);
    if (!inner.net) return;
    // Go: cidr.Contains(except.IP) && cidrMaskLen < exceptMaskLen (false across families)
    if (!containsCidr(outer.net!, inner.net) || outer.net!.prefix >= inner.net.prefix) {
      const why =
        inner.net.family !== outer.net!.family
          ? ` (${inner.net.family === 4 ? 'IPv4' : 'IPv6'} inside an ${outer.net!.family === 4 ? 'IPv4' : 'IPv6'} cidr)`
          : '';
      I.invalid(ep, text, `must be a strict subset of \`cidr\`${why}`);
      return;
    }
    out.except.push(formatCidr(inner.net));
  });
  return out;
}

function normPeer(obj: Obj, p: string, I: Issues): PolicyPeer {
  checkFields(obj, p, ['podSelector', 'namespaceSelector', 'ipBlock'], I);
  const out: PolicyPeer = {};
  const podSelector = normSelector(obj.podSelector, child(p, 'podSelector'), I);
  const namespaceSelector = normSelector(obj.namespaceSelector, child(p, 'namespaceSelector'), I);
  const ipBlock = normIpBlock(obj.ipBlock, child(p, 'ipBlock'), I);
  if (podSelector) out.podSelector = podSelector;
  if (namespaceSelector) out.namespaceSelector = namespaceSelector;
  if (ipBlock) out.ipBlock = ipBlock;
  // count what was written (a badly typed selector still counts), as Go counts non-nil pointers
  const given = (v: unknown): boolean => v !== undefined && v !== null;
  const n = [obj.podSelector, obj.namespaceSelector, obj.ipBlock].filter(given).length;
  if (n === 0) I.required(p, 'must specify a peer');
  else if (n > 1 && given(obj.ipBlock)) I.forbidden(p, 'may not specify both ipBlock and another peer');
  return out;
}

const POLICY_TYPES: readonly PolicyType[] = ['Ingress', 'Egress'];

function normSpec(v: unknown, I: Issues): NetworkPolicySpec {
  const path = 'spec';
  const obj = asObject(v, path, I) ?? {};
  checkFields(obj, path, ['podSelector', 'ingress', 'egress', 'policyTypes'], I);
  // podSelector is optional in networking/v1: absent means the empty selector, every pod of the
  // namespace (as in Kubernetes; a misspelt key is caught above as an unknown field)
  const podSelector = normSelector(obj.podSelector, child(path, 'podSelector'), I) ?? emptySelector();
  const ingress = objectItems(obj.ingress, child(path, 'ingress'), I, (rule, p): IngressRule => {
    checkFields(rule, p, ['ports', 'from'], I);
    const ports = objectItems(rule.ports, child(p, 'ports'), I, (x, pp) => normPort(x, pp, I));
    const from = objectItems(rule.from, child(p, 'from'), I, (x, pp) => normPeer(x, pp, I));
    return { from, ports };
  });
  const egress = objectItems(obj.egress, child(path, 'egress'), I, (rule, p): EgressRule => {
    checkFields(rule, p, ['ports', 'to'], I);
    const ports = objectItems(rule.ports, child(p, 'ports'), I, (x, pp) => normPort(x, pp, I));
    const to = objectItems(rule.to, child(p, 'to'), I, (x, pp) => normPeer(x, pp, I));
    return { to, ports };
  });

  const typesPath = child(path, 'policyTypes');
  const rawTypes = asList(obj.policyTypes, typesPath, I);
  const given = new Set<PolicyType>();
  if (rawTypes.length > POLICY_TYPES.length) {
    I.invalid(typesPath, rawTypes, 'may not specify more than two policyTypes');
  } else {
    rawTypes.forEach((t, i) => {
      const s = asString(t, index(typesPath, i), I);
      if (s === undefined) {
        if (t === null || t === undefined) I.notSupported(index(typesPath, i), null, POLICY_TYPES);
        return;
      }
      if ((POLICY_TYPES as readonly string[]).includes(s)) given.add(s as PolicyType);
      else I.notSupported(index(typesPath, i), s, POLICY_TYPES);
    });
  }
  // SetDefaults_NetworkPolicy: when policyTypes is empty, Ingress always, plus Egress when the
  // spec has at least one egress rule (len(spec.Egress) != 0: `egress: []` does not count).
  // Given types are a set (the apiserver accepts a repeated entry, which means nothing more):
  // weft keeps them once each, Ingress before Egress, so equal policies compare equal.
  let policyTypes: PolicyType[];
  if (rawTypes.length === 0) policyTypes = egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  else policyTypes = POLICY_TYPES.filter((t) => given.has(t));
  return { podSelector, policyTypes, ingress, egress };
}

// ---------------------------------------------------------------------------------------------
// objects

const TOP_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
/** `status` is ignored: `kubectl get -o yaml` output carries `status: {}`. */
const TOP_IGNORED = ['status'];
const META_FIELDS = ['name', 'namespace', 'labels', 'annotations'] as const;
/** ObjectMeta fields that copies of live objects carry; the apiserver sets them, weft ignores them. */
const META_IGNORED = [
  'generateName',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'ownerReferences',
  'finalizers',
  'managedFields',
];
const TOTAL_ANNOTATION_SIZE = 256 * 1024;

/** "document 2 (NetworkPolicy "web")" — the head of every issue of one object. */
function label(head: string, name: string | undefined): string {
  const tag = name ? `NetworkPolicy ${JSON.stringify(name)}` : '';
  if (head && tag) return `${head} (${tag})`;
  return head || tag;
}
const line = (lbl: string, issue: string): string => (lbl ? `${lbl}: ${issue}` : issue);

/** Checks apiVersion and kind; the issue (without head) when they are not a NetworkPolicy's. */
function kindProblem(obj: Obj): string | undefined {
  const { apiVersion, kind } = obj;
  const want = `weft applies ${POLICY_API_VERSION} ${POLICY_KIND}`;
  if (kind === undefined || kind === null || kind === '') return `kind is missing: ${want} (kind: ${POLICY_KIND})`;
  if (typeof kind !== 'string') return `kind ${show(kind)} is not supported: ${want}`;
  if (kind !== POLICY_KIND) return `kind ${kind} is not supported: ${want}`;
  if (apiVersion === undefined || apiVersion === null || apiVersion === '') {
    return `apiVersion is missing: ${POLICY_KIND} needs apiVersion: ${POLICY_API_VERSION}`;
  }
  if (apiVersion !== POLICY_API_VERSION) {
    return `apiVersion ${typeof apiVersion === 'string' ? apiVersion : show(apiVersion)} is not supported for ${POLICY_KIND}: use ${POLICY_API_VERSION}`;
  }
  return undefined;
}

/**
 * One NetworkPolicy object. `head` starts every issue ("policies.yaml: document 2"); the returned
 * issues are complete lines.
 */
function normalizeObject(value: unknown, head: string, doc: number): { policy?: PolicyDocument; issues: string[] } {
  if (!isObj(value)) {
    return {
      issues: [line(head, `must be a Kubernetes object (a mapping with apiVersion and kind), not ${typeName(value) === 'array' ? 'a list' : typeName(value)}`)],
    };
  }
  const kindIssue = kindProblem(value);
  if (kindIssue) return { issues: [line(head, kindIssue)] };

  const I = new Issues();
  checkFields(value, '', TOP_FIELDS, I, TOP_IGNORED);
  const meta = asObject(value.metadata, 'metadata', I) ?? {};
  checkFields(meta, 'metadata', META_FIELDS, I, META_IGNORED);

  const rawName = meta.name;
  const name = asString(rawName, 'metadata.name', I);
  if (name === undefined || name === '') {
    if (rawName === undefined || rawName === null || name === '') {
      I.required('metadata.name', meta.generateName !== undefined ? 'name is required (weft does not support generateName)' : 'name is required');
    }
  } else {
    for (const msg of dns1123SubdomainErrors(name)) I.invalid('metadata.name', name, msg);
  }
  let namespace = asString(meta.namespace, 'metadata.namespace', I);
  if (namespace === '') namespace = undefined; // "" is "not set", as in Kubernetes
  if (namespace !== undefined) for (const msg of dns1123LabelErrors(namespace)) I.invalid('metadata.namespace', namespace, msg);

  const labels = stringMap(meta.labels, 'metadata.labels', I);
  validateLabels(labels, 'metadata.labels', I);
  const annotations = stringMap(meta.annotations, 'metadata.annotations', I);
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(annotations)) {
    // the rule is a qualified name, except that case does not matter
    for (const msg of labelKeyErrors(k.toLowerCase())) I.invalid('metadata.annotations', k, msg);
    annotationBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (annotationBytes > TOTAL_ANNOTATION_SIZE) I.tooLong('metadata.annotations', TOTAL_ANNOTATION_SIZE);

  const spec = normSpec(value.spec, I);
  const lbl = label(head, name || undefined);
  if (I.count) return { issues: I.list.map((i) => line(lbl, i)) };
  const policy: PolicyDocument = { name: name!, labels, annotations, spec, doc };
  if (namespace !== undefined) policy.namespace = namespace;
  return { policy, issues: [] };
}

/**
 * Validates and normalizes one NetworkPolicy object given as plain data (from a compose file's
 * x-weft section or the API). `where` starts every issue, e.g. "compose.yaml: x-weft.policies[0]".
 * Throws PolicyParseError listing every problem.
 */
/** A normalized document as a NetworkPolicy object again (what the API's apply takes). */
export function policyObject(d: Pick<PolicyDocument, 'name' | 'namespace' | 'labels' | 'annotations' | 'spec'>): Record<string, unknown> {
  return {
    apiVersion: POLICY_API_VERSION,
    kind: POLICY_KIND,
    metadata: { name: d.name, namespace: d.namespace, labels: d.labels, annotations: d.annotations },
    spec: d.spec,
  };
}

export function normalizePolicy(obj: unknown, where?: string): PolicyDocument {
  const { policy, issues } = normalizeObject(obj, where ?? '', 1);
  if (!policy) throw new PolicyParseError(issues);
  return policy;
}

// ---------------------------------------------------------------------------------------------
// files

/**
 * YAML 1.1, as kubectl reads manifests (go-yaml): `on`/`yes` are booleans, `010` is octal. Like
 * go-yaml, timestamps stay strings and there are no base-60 numbers.
 */
const yamlTags = (tags: Tags): Tags =>
  tags.filter((t) => {
    if (typeof t === 'string') return true;
    const format = 'format' in t ? t.format : undefined;
    return t.tag !== 'tag:yaml.org,2002:timestamp' && format !== 'TIME';
  });

/** Flattens `kind: List` (v1) and `kind: NetworkPolicyList` into their items. */
function collect(
  value: unknown,
  head: string,
  doc: number,
  out: PolicyDocument[],
  issues: string[],
): void {
  if (isObj(value) && (value.kind === 'List' || value.kind === 'NetworkPolicyList')) {
    const listKind = value.kind;
    const wantVersion = listKind === 'List' ? 'v1' : POLICY_API_VERSION;
    if (value.apiVersion !== wantVersion) {
      issues.push(line(head, `apiVersion ${show(value.apiVersion ?? null)} is not supported for ${listKind}: use ${wantVersion}`));
      return;
    }
    const I = new Issues();
    checkFields(value, '', ['apiVersion', 'kind', 'metadata', 'items'], I);
    const items = asList(value.items, 'items', I);
    issues.push(...I.list.map((i) => line(head, i)));
    items.forEach((item, i) => {
      let it = item;
      // items of a typed list may leave out their own apiVersion and kind
      if (listKind === 'NetworkPolicyList' && isObj(item) && item.kind === undefined && item.apiVersion === undefined) {
        it = { apiVersion: POLICY_API_VERSION, kind: POLICY_KIND, ...item };
      }
      collect(it, `${head}, items[${i}]`, doc, out, issues);
    });
    return;
  }
  const { policy, issues: found } = normalizeObject(value, head, doc);
  if (policy) out.push(policy);
  issues.push(...found);
}

/**
 * Parses a file of NetworkPolicy YAML (or JSON): one or many documents separated by `---`, empty
 * documents skipped, `kind: List` and `kind: NetworkPolicyList` flattened. `source` (a file name)
 * starts every issue. Throws PolicyParseError listing every problem of every document; an empty
 * file gives [].
 */
export function parsePolicies(text: string, source?: string): PolicyDocument[] {
  const prefix = source ? `${source}: ` : '';
  const docs = parseAllDocuments(text, { version: '1.1', customTags: yamlTags, uniqueKeys: true, prettyErrors: true });
  const out: PolicyDocument[] = [];
  const issues: string[] = [];
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((d, i) => {
    const n = i + 1;
    const head = `${prefix}document ${n}`;
    if (d.errors.length) {
      for (const e of d.errors) {
        const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : '';
        const msg = (/^([\s\S]*?) at line \d+, column \d+/.exec(e.message)?.[1] ?? e.message.split('\n')[0]).trim();
        issues.push(`${head}: ${where}YAML syntax error: ${msg}`);
      }
      return;
    }
    if (d.contents === null || (isScalar(d.contents) && d.contents.value === null)) return;
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 1000 });
    } catch (err) {
      issues.push(`${head}: YAML error: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    collect(value, head, n, out, issues);
  });

  // Deviation: kubectl applies two objects with the same name one after the other, the last one
  // winning; weft refuses the file, since the second one silently replacing the first is a copy
  // and paste slip more often than a wish.
  const seen = new Map<string, PolicyDocument>();
  for (const p of out) {
    const id = `${p.namespace ?? ''}/${p.name}`;
    const first = seen.get(id);
    if (first) {
      issues.push(
        `${prefix}document ${p.doc} (NetworkPolicy ${JSON.stringify(p.name)}): metadata.name: Duplicate value: ${JSON.stringify(p.name)}: document ${first.doc} defines a NetworkPolicy of the same name${p.namespace ? ' and namespace' : ''}`,
      );
    } else {
      seen.set(id, p);
    }
  }
  if (issues.length) throw new PolicyParseError(issues);
  return out;
}
