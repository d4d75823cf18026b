/**
 * The egress guard: every connection a probe makes goes through here. A host
 * is resolved exactly once, every address it resolves to is checked against
 * the workspace's egress policy, and the caller connects to the address that
 * was checked (never re-resolving), so DNS rebinding cannot swap a public
 * answer for a private one between check and connect. Denied targets are
 * refused before any packet is sent.
 *
 * Rules: link-local, cloud metadata, "this network" (0/8), multicast,
 * broadcast/reserved and unspecified addresses are never reachable; loopback
 * and private ranges only inside the workspace's allowCIDRs; public addresses
 * always. IPv6 addresses that reach an IPv4 host (IPv4-mapped ::ffff:0:0/96,
 * NAT64 64:ff9b::/96 and 64:ff9b:1::/48, IPv4-compatible ::/96, 6to4
 * 2002::/16) are judged as the IPv4 address they carry.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { Socket, isIP, connect as netConnect } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, rootCertificates } from 'node:tls';
import { ProbeFailure, classifyNetworkError, describeTarget, timeoutFailure } from './probe-failure.js';
import type { ProbeTarget } from './probe-failure.js';
import type { EgressPolicy, ProbeContext } from './probe-types.js';

/** Bytes of an address: 4 for IPv4, 16 for IPv6. */
type AddressBytes = Uint8Array;

interface Cidr {
  bytes: AddressBytes;
  prefix: number;
}

interface LabelledRange {
  cidr: Cidr;
  label: string;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a name to all its addresses; injectable so tests can model multi-address answers. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

function parseIPv4(text: string): AddressBytes | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    bytes[i] = n;
  }
  return bytes;
}

function parseIPv6(text: string): AddressBytes | undefined {
  // An embedded dotted IPv4 tail (::ffff:1.2.3.4) is the last two groups.
  const lastColon = text.lastIndexOf(':');
  const dotted = text.slice(lastColon + 1);
  let hex = text;
  if (dotted.includes('.')) {
    const v4 = parseIPv4(dotted);
    if (v4 === undefined) return undefined;
    const group = (hi: number | undefined, lo: number | undefined): string =>
      (((hi ?? 0) << 8) | (lo ?? 0)).toString(16);
    hex = `${text.slice(0, lastColon + 1)}${group(v4[0], v4[1])}:${group(v4[2], v4[3])}`;
  }
  const halves = hex.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const groups: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      groups.push(parseInt(g, 16));
    }
    return groups;
  };
  const head = toGroups(halves[0] ?? '');
  const tail = halves.length === 2 ? toGroups(halves[1] ?? '') : [];
  if (head === undefined || tail === undefined) return undefined;
  const zeros = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (zeros < 0 || (halves.length === 2 && zeros === 0)) return undefined;
  const groups = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  if (groups.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** Parses an IPv4 or IPv6 literal (IPv6 may carry a %zone and [brackets]). */
export function parseAddress(text: string): AddressBytes | undefined {
  const bare = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return parseIPv4(bare);
  if (family === 6) return parseIPv6(bare);
  return undefined;
}

const IPV4_MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
const NAT64_WELL_KNOWN = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];

/** Where an IPv6 address carries an IPv4 one (byte offsets), and which bytes that layout requires to be zero. */
interface Layout {
  ipv4: number[];
  zero: number[];
}

const LAST_32_BITS: Layout = { ipv4: [12, 13, 14, 15], zero: [] };

/**
 * IPv6 forms that reach an IPv4 host. A prefix inside the local-use NAT64
 * range may have any of RFC 6052's lengths (/48, /56, /64, /96; byte 8 is
 * the zero "u" octet, the suffix is zero): every layout the address fits is
 * judged, and the strictest answer wins.
 */
const IPV4_CARRIERS: Array<{ prefix: number[]; layouts: Layout[]; excluded?: (bytes: AddressBytes) => boolean }> = [
  // IPv4-mapped ::ffff:0:0/96
  { prefix: IPV4_MAPPED, layouts: [LAST_32_BITS] },
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052)
  { prefix: NAT64_WELL_KNOWN, layouts: [LAST_32_BITS] },
  // NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215)
  {
    prefix: [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01],
    layouts: [
      { ipv4: [6, 7, 9, 10], zero: [8, 11, 12, 13, 14, 15] },
      { ipv4: [7, 9, 10, 11], zero: [8, 12, 13, 14, 15] },
      { ipv4: [9, 10, 11, 12], zero: [8, 13, 14, 15] },
      LAST_32_BITS,
    ],
  },
  // IPv4-compatible ::/96 (deprecated, still routed by some stacks); :: and ::1 keep their own meaning
  {
    prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    layouts: [LAST_32_BITS],
    excluded: (b) => b[12] === 0 && b[13] === 0 && b[14] === 0 && (b[15] ?? 0) <= 1,
  },
  // 6to4 2002::/16 (RFC 3056): the relay forwards to the embedded IPv4 host
  { prefix: [0x20, 0x02], layouts: [{ ipv4: [2, 3, 4, 5], zero: [] }] },
];

/** The IPv4 addresses an IPv6 address may reach through translation or tunnelling; the address itself otherwise. */
function judgedAs(bytes: AddressBytes): AddressBytes[] {
  if (bytes.length !== 16) return [bytes];
  const carrier = IPV4_CARRIERS.find((c) => c.prefix.every((b, i) => bytes[i] === b) && !c.excluded?.(bytes));
  if (!carrier) return [bytes];
  const fits = carrier.layouts
    .filter((l) => l.zero.every((i) => bytes[i] === 0))
    .map((l) => Uint8Array.from(l.ipv4, (i) => bytes[i] ?? 0));
  if (carrier.layouts.length === 1) return fits;
  // With several layouts, an all-zero field is one where nothing is embedded; none left is 0.0.0.0 (denied).
  const embedded = fits.filter((v4) => v4.some((b) => b !== 0));
  return embedded.length > 0 ? embedded : [new Uint8Array(4)];
}

/** An address in ::ffff:0:0/96 or 64:ff9b::/96 as the IPv4 address it carries (for allowCIDRs such as ::ffff:10.0.0.0/104). */
function unwrapIPv4(bytes: AddressBytes): AddressBytes {
  if (bytes.length !== 16) return bytes;
  return [IPV4_MAPPED, NAT64_WELL_KNOWN].some((prefix) => prefix.every((b, i) => bytes[i] === b))
    ? bytes.slice(12)
    : bytes;
}

/** Parses "10.0.0.0/8", "fc00::/7" or a bare address (a host route). */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, prefixText, extra] = text.trim().split('/');
  if (addr === undefined || extra !== undefined) return undefined;
  const bytes = parseAddress(addr);
  if (bytes === undefined) return undefined;
  const max = bytes.length * 8;
  if (prefixText === undefined) return { bytes, prefix: max };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { bytes, prefix };
}

/** ::ffff:10.0.0.0/104 allows what 10.0.0.0/8 allows, since addresses are unwrapped before matching. */
function unwrapCidr(cidr: Cidr): Cidr {
  const bytes = unwrapIPv4(cidr.bytes);
  return bytes.length === cidr.bytes.length || cidr.prefix < 96 ? cidr : { bytes, prefix: cidr.prefix - 96 };
}

function inCidr(bytes: AddressBytes, cidr: Cidr): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((cidr.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

function ranges(label: string, cidrs: string[]): LabelledRange[] {
  return cidrs.map((c) => {
    const cidr = parseCidr(c);
    if (cidr === undefined) throw new Error(`invalid built-in CIDR ${c}`);
    return { cidr, label };
  });
}

/** Checked first: no policy can open these. */
const NEVER_ALLOWED: LabelledRange[] = [
  // AWS, GCP, Azure, Oracle (169.254.169.254), Azure wireserver, Alibaba, AWS IPv6, GCP IPv6
  ...ranges('cloud metadata endpoint', [
    '169.254.169.254/32',
    '168.63.129.16/32',
    '100.100.100.200/32',
    'fd00:ec2::254/128',
    'fd20:ce::254/128',
  ]),
  ...ranges('link-local address', ['169.254.0.0/16', 'fe80::/10']),
  ...ranges('unspecified address', ['0.0.0.0/8', '::/128']),
  ...ranges('broadcast address', ['255.255.255.255/32']),
  ...ranges('multicast address', ['224.0.0.0/4', 'ff00::/8']),
  ...ranges('reserved address', ['240.0.0.0/4']),
];

/** Reachable only when the workspace's egress.allowCIDRs contains the address. */
const PRIVATE: LabelledRange[] = [
  ...ranges('loopback address', ['127.0.0.0/8', '::1/128']),
  ...ranges('private address', [
    '10.0.0.0/8',
    '172.16.0.0/12',
    '192.168.0.0/16',
    '100.64.0.0/10',
    '192.0.0.0/24',
    '198.18.0.0/15',
    'fc00::/7',
    'fec0::/10',
  ]),
];

export type EgressDecision = { allowed: true } | { allowed: false; rule: string };

/** Decides one address against the policy; pure, so every rule is unit-testable. */
export function checkAddress(address: string, policy: EgressPolicy): EgressDecision {
  const parsed = parseAddress(address);
  if (parsed === undefined) return { allowed: false, rule: 'not an IP address' };
  for (const bytes of judgedAs(parsed)) {
    const decision = checkBytes(bytes, policy);
    if (!decision.allowed)
      return bytes.length === parsed.length
        ? decision
        : { allowed: false, rule: `${decision.rule} (it reaches the IPv4 host ${bytes.join('.')})` };
  }
  return { allowed: true };
}

function checkBytes(bytes: AddressBytes, policy: EgressPolicy): EgressDecision {
  const never = NEVER_ALLOWED.find((r) => inCidr(bytes, r.cidr));
  if (never !== undefined) return { allowed: false, rule: `${never.label}s are never allowed` };
  const restricted = PRIVATE.find((r) => inCidr(bytes, r.cidr));
  if (restricted === undefined) return { allowed: true };
  const allowed = policy.allowCIDRs.some((text) => {
    const cidr = parseCidr(text);
    return cidr !== undefined && inCidr(bytes, unwrapCidr(cidr));
  });
  return allowed
    ? { allowed: true }
    : {
        allowed: false,
        rule: `${restricted.label} not in the Workspace's spec.policy.egress.allowCIDRs; add a CIDR that covers it there (platform team)`,
      };
}

/** Entries of an allowCIDRs list that do not parse; for admission to name them. */
export function invalidCIDRs(cidrs: readonly string[]): string[] {
  return cidrs.filter((c) => parseCidr(c) === undefined);
}

/**
 * Decisions per frozen policy object and address. The gateway checks every
 * request's resolved address against a policy it built once per Workspace
 * version and froze (ADR 0030); a frozen policy cannot change, so its answer
 * for an address cannot either. Unfrozen policies are decided afresh.
 */
const decisionsOf = new WeakMap<EgressPolicy, Map<string, EgressDecision>>();
const DECISIONS_PER_POLICY = 256;

function decide(address: string, policy: EgressPolicy): EgressDecision {
  if (!Object.isFrozen(policy) || !Object.isFrozen(policy.allowCIDRs)) return checkAddress(address, policy);
  let decisions = decisionsOf.get(policy);
  if (decisions === undefined) decisionsOf.set(policy, (decisions = new Map<string, EgressDecision>()));
  let decision = decisions.get(address);
  if (decision === undefined) {
    decision = checkAddress(address, policy);
    if (decisions.size >= DECISIONS_PER_POLICY) decisions.clear();
    decisions.set(address, decision);
  }
  return decision;
}

const systemResolver: Resolver = async (host) => {
  const answers = await dnsLookup(host, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * Resolves `host` once and checks every address it resolves to. Returns the
 * first (checked) address for the caller to connect to. Throws
 * ProbeFailure('EgressDenied') if any address is denied, ('DNSError') if the
 * name does not resolve.
 */
export async function resolveEgress(
  host: string,
  policy: EgressPolicy,
  resolver: Resolver = systemResolver,
): Promise<ResolvedAddress> {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  let addresses: ResolvedAddress[];
  const literal = isIP(bare.replace(/%.*$/, ''));
  if (literal !== 0) {
    addresses = [{ address: bare, family: literal === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await resolver(bare);
    } catch (err) {
      throw new ProbeFailure('DNSError', `could not resolve ${bare}`, { cause: err });
    }
    if (addresses.length === 0) throw new ProbeFailure('DNSError', `${bare} has no addresses`);
  }
  for (const a of addresses) {
    const decision = decide(a.address, policy);
    if (!decision.allowed) {
      const shown = a.address === bare ? bare : `${bare} (${a.address})`;
      throw new ProbeFailure('EgressDenied', `egress to ${shown} is denied: ${decision.rule}`);
    }
  }
  return addresses[0] as ResolvedAddress;
}

/**
 * The probe's deadline as a signal: ctx.timeoutMs from now, or earlier if the
 * caller cancels. Drivers pass it to connectGuarded and stop reading on abort.
 */
export function deadlineSignal(ctx: Pick<ProbeContext, 'timeoutMs' | 'signal'>): AbortSignal {
  const timeout = AbortSignal.timeout(Math.max(1, ctx.timeoutMs));
  return ctx.signal === undefined ? timeout : AbortSignal.any([ctx.signal, timeout]);
}

export interface GuardedConnectOptions {
  /** Host and port as configured; what messages, SNI and certificate checks use. */
  host: string;
  port: number;
  /** Wrap in TLS right away (verified against system CAs plus ctx.trustedCAs). */
  tls?: boolean;
  /** ALPN protocols to offer when tls is set. */
  alpnProtocols?: string[];
  /** A TLS client certificate and key (PEM) to present when tls is set. */
  clientCertificate?: ClientCertificate;
  signal: AbortSignal;
}

export interface ClientCertificate {
  cert: string;
  key: string;
}

/**
 * The connection's TLS client identity, from the credential fields
 * `clientCertificate` and `clientKey` (format pem) that types such as
 * postgresql and http-api declare. Both or neither.
 */
export function clientCertificateOf(credentials: Record<string, string>): ClientCertificate | undefined {
  const cert = credentials['clientCertificate'];
  const key = credentials['clientKey'];
  return cert && key ? { cert, key } : undefined;
}

export interface GuardedConnection<S extends Socket = Socket> {
  socket: S;
  target: ProbeTarget;
}

function trustStore(ctx: Pick<ProbeContext, 'trustedCAs'>): string[] | undefined {
  return ctx.trustedCAs !== undefined && ctx.trustedCAs.length > 0
    ? [...rootCertificates, ...ctx.trustedCAs]
    : undefined;
}

function tlsIdentityOptions(host: string): { servername?: string; checkServerIdentity: typeof checkServerIdentity } {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return {
    // SNI carries names only; an IP literal host is verified against the certificate's IP SANs.
    ...(isIP(bare) === 0 ? { servername: bare } : {}),
    checkServerIdentity: (_ignored, cert) => checkServerIdentity(bare, cert),
  };
}

/**
 * Opens a TCP (optionally TLS) connection to host:port through the egress
 * guard: the ctx.dial override (tests) is applied, the address is resolved
 * and checked, and the socket connects to exactly that address. Resolves once
 * connected (after the TLS handshake when tls is set); every failure is a
 * ProbeFailure.
 */
export async function connectGuarded(ctx: ProbeContext, opts: GuardedConnectOptions): Promise<GuardedConnection> {
  const target: ProbeTarget = { host: opts.host, port: opts.port };
  const override = ctx.dial?.(opts.host, opts.port);
  const checked = await resolveEgress(override?.host ?? opts.host, ctx.egress);
  const port = override?.port ?? opts.port;
  if (opts.signal.aborted) throw timeoutFailure(target, ctx.timeoutMs, false, opts.signal.reason);

  return new Promise<GuardedConnection>((resolve, reject) => {
    let connected = false;
    const socket: Socket =
      opts.tls === true
        ? tlsConnect({
            host: checked.address,
            port,
            ca: trustStore(ctx),
            rejectUnauthorized: true,
            ...tlsIdentityOptions(opts.host),
            ...(opts.alpnProtocols !== undefined ? { ALPNProtocols: opts.alpnProtocols } : {}),
            ...(opts.clientCertificate ?? {}),
          })
        : netConnect({ host: checked.address, port, family: checked.family });
    const readyEvent = opts.tls === true ? 'secureConnect' : 'connect';
    const cleanup = (): void => {
      opts.signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off(readyEvent, onReady);
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      if (connected && opts.tls === true) {
        // The usual cause: the server speaks plain text on this port and waits for a command.
        reject(
          new ProbeFailure(
            'TLSError',
            `connected to ${describeTarget(target)} but the TLS handshake got no answer within ${ctx.timeoutMs} ms; if the server does not use TLS on this port, turn TLS off in spec.settings (tls: false, or an http:// URL)`,
            { cause: opts.signal.reason, reachable: 'True' },
          ),
        );
        return;
      }
      reject(timeoutFailure(target, ctx.timeoutMs, connected, opts.signal.reason));
    };
    const onError = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(classifyNetworkError(err, target, connected));
    };
    const onReady = (): void => {
      cleanup();
      resolve({ socket, target });
    };
    socket.once('connect', () => {
      connected = true;
    });
    socket.on('error', onError);
    socket.once(readyEvent, onReady);
    opts.signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A socket source for client libraries (pg, mysql2): the host is resolved and
 * checked once, up front, and every socket made here connects to that checked
 * address, whatever host and port the library hands to connect(). The library
 * keeps the configured name for TLS (SNI, certificate checks), so a name that
 * re-resolves elsewhere (DNS rebinding) is never dialled. Bytes received are
 * capped at ctx.maxResponseBytes.
 */
export interface PinnedDialer {
  /** Host and port as configured, for messages. */
  readonly target: ProbeTarget;
  /** A new socket whose connect() (with any or no arguments) goes to the checked address. */
  socket(): Socket;
  /** The same, already connecting (for libraries that take a connected stream). */
  open(): Socket;
  /** Whether a socket reached the server, and whether the server sent anything: for classifying failures. */
  readonly connected: boolean;
  readonly responded: boolean;
  /** Set when the response cap cut the connection. */
  readonly overflow: ProbeFailure | undefined;
  /** The checked address and port, for a library that opens its own socket (it must connect to exactly this). */
  readonly address: { host: string; port: number; family: 4 | 6 };
  /** Progress reported by such a library, since its sockets are not seen here. */
  markConnected(): void;
  destroyAll(): void;
}

/** Resolves and checks `host` (after the ctx.dial override) and returns a dialer pinned to the result. */
export async function pinnedDialer(ctx: ProbeContext, target: ProbeTarget): Promise<PinnedDialer> {
  const override = ctx.dial?.(target.host, target.port);
  const checked = await resolveEgress(override?.host ?? target.host, ctx.egress);
  const pin = {
    host: checked.address.replace(/^\[(.*)\]$/, '$1'),
    port: override?.port ?? target.port,
    family: checked.family,
  };
  const limit = ctx.maxResponseBytes > 0 ? ctx.maxResponseBytes : 64 * 1024;
  const sockets = new Set<Socket>();
  const state = { connected: false, received: 0, overflow: undefined as ProbeFailure | undefined };

  class PinnedSocket extends Socket {
    constructor() {
      super();
      sockets.add(this);
      this.once('connect', () => {
        state.connected = true;
      });
      this.on('data', (chunk: Buffer) => {
        state.received += chunk.length;
        if (state.received > limit && state.overflow === undefined) {
          state.overflow = new ProbeFailure(
            'UnexpectedResponse',
            `${describeTarget(target)} sent more than ${limit} bytes`,
          );
          this.destroy(state.overflow);
        }
      });
    }

    // The library's idea of where to connect is ignored on purpose.
    override connect(): this {
      return super.connect({ host: pin.host, port: pin.port, family: pin.family });
    }
  }

  return {
    target,
    socket: () => new PinnedSocket(),
    open: () => new PinnedSocket().connect(),
    get connected() {
      return state.connected;
    },
    get responded() {
      return state.received > 0;
    },
    get overflow() {
      return state.overflow;
    },
    address: pin,
    markConnected: () => {
      state.connected = true;
    },
    destroyAll: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}
