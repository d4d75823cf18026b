import net from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { checkAddress, invalidCIDRs, parseAddress, parseCidr, pinnedDialer, resolveEgress } from './egress.js';
import type { Resolver } from './egress.js';
import { ProbeFailure } from './probe-failure.js';

const none = { allowCIDRs: [] };
const loopbackAllowed = { allowCIDRs: ['127.0.0.0/8', '::1/128'] };

describe('parseAddress', () => {
  it('parses IPv4, IPv6, embedded IPv4 tails, brackets and zones', () => {
    expect([...parseAddress('10.1.2.3')!]).toEqual([10, 1, 2, 3]);
    expect([...parseAddress('::1')!]).toEqual([...new Array(15).fill(0), 1]);
    expect([...parseAddress('[::ffff:127.0.0.1]')!].slice(10)).toEqual([0xff, 0xff, 127, 0, 0, 1]);
    expect([...parseAddress('fe80::1%eth0')!].slice(0, 2)).toEqual([0xfe, 0x80]);
    expect([...parseAddress('2001:db8:0:0:0:0:0:1')!]).toEqual([...parseAddress('2001:db8::1')!]);
  });

  it('rejects what is not an IP literal', () => {
    for (const bad of ['example.com', '256.0.0.1', '1.2.3', '::g', '1::2::3', ''])
      expect(parseAddress(bad)).toBeUndefined();
  });
});

describe('parseCidr / invalidCIDRs', () => {
  it('accepts prefixes and bare addresses, and names the invalid entries', () => {
    expect(parseCidr('10.0.0.0/8')?.prefix).toBe(8);
    expect(parseCidr('127.0.0.1')?.prefix).toBe(32);
    expect(parseCidr('fc00::/7')?.prefix).toBe(7);
    expect(invalidCIDRs(['10.0.0.0/8', '10.0.0.0/33', 'fc00::/129', 'nope', '1.2.3.4/8/1'])).toEqual([
      '10.0.0.0/33',
      'fc00::/129',
      'nope',
      '1.2.3.4/8/1',
    ]);
  });
});

describe('checkAddress', () => {
  it('always allows public addresses', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '172.32.0.1', '100.128.0.1']) {
      expect(checkAddress(a, none)).toEqual({ allowed: true });
    }
  });

  it.each([
    ['169.254.169.254', 'cloud metadata endpoint'],
    ['100.100.100.200', 'cloud metadata endpoint'],
    ['fd00:ec2::254', 'cloud metadata endpoint'],
    ['168.63.129.16', 'cloud metadata endpoint'],
    ['fd20:ce::254', 'cloud metadata endpoint'],
    ['64:ff9b::169.254.169.254', 'cloud metadata endpoint'],
    ['64:ff9b:1::a9fe:a9fe', 'cloud metadata endpoint'],
    ['::169.254.169.254', 'cloud metadata endpoint'],
    ['::a83f:8110', 'cloud metadata endpoint'],
    ['2002:a9fe:a9fe::1', 'cloud metadata endpoint'],
    ['169.254.1.1', 'link-local address'],
    ['fe80::1', 'link-local address'],
    ['febf::1', 'link-local address'],
    ['0.0.0.0', 'unspecified address'],
    ['0.1.2.3', 'unspecified address'],
    ['::', 'unspecified address'],
    ['255.255.255.255', 'broadcast address'],
    ['224.0.0.1', 'multicast address'],
    ['239.255.255.250', 'multicast address'],
    ['ff02::1', 'multicast address'],
    ['240.0.0.1', 'reserved address'],
  ])('never allows %s (%s), whatever the policy says', (address, label) => {
    const everything = { allowCIDRs: ['0.0.0.0/0', '::/0', address] };
    const decision = checkAddress(address, everything);
    expect(decision.allowed).toBe(false);
    expect(decision.allowed === false && decision.rule).toContain(label);
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
  ])('denies %s (%s) unless allowCIDRs contains it', (address, label) => {
    const denied = checkAddress(address, none);
    expect(denied.allowed).toBe(false);
    expect(denied.allowed === false && denied.rule).toContain(label);
    expect(checkAddress(address, { allowCIDRs: ['0.0.0.0/0', '::/0'] })).toEqual({ allowed: true });
    expect(checkAddress(address, { allowCIDRs: [address] })).toEqual({ allowed: true });
  });

  it('matches only inside the allowed range', () => {
    const policy = { allowCIDRs: ['10.1.0.0/16'] };
    expect(checkAddress('10.1.200.3', policy).allowed).toBe(true);
    expect(checkAddress('10.2.0.1', policy).allowed).toBe(false);
    expect(checkAddress('172.16.5.5', { allowCIDRs: ['172.16.0.0/13'] }).allowed).toBe(true);
    expect(checkAddress('172.24.0.1', { allowCIDRs: ['172.16.0.0/13'] }).allowed).toBe(false);
  });

  it('ignores invalid allowCIDRs entries (fails closed)', () => {
    expect(checkAddress('10.0.0.1', { allowCIDRs: ['10.0.0.0/99', 'garbage'] }).allowed).toBe(false);
  });

  it('unwraps IPv4-mapped and NAT64 IPv6 before checking', () => {
    expect(checkAddress('::ffff:169.254.169.254', { allowCIDRs: ['::/0', '0.0.0.0/0'] })).toMatchObject({
      allowed: false,
    });
    expect(checkAddress('::ffff:a9fe:a9fe', { allowCIDRs: ['::/0'] }).allowed).toBe(false);
    expect(checkAddress('::ffff:127.0.0.1', none).allowed).toBe(false);
    expect(checkAddress('::ffff:127.0.0.1', { allowCIDRs: ['127.0.0.0/8'] }).allowed).toBe(true);
    expect(checkAddress('::ffff:10.0.0.1', { allowCIDRs: ['::ffff:10.0.0.0/104'] }).allowed).toBe(true);
    expect(checkAddress('64:ff9b::10.0.0.1', none).allowed).toBe(false);
    expect(checkAddress('64:ff9b::8.8.8.8', none).allowed).toBe(true);
    expect(checkAddress('::ffff:8.8.8.8', none).allowed).toBe(true);
  });

  it('judges every IPv6 form that reaches an IPv4 host as that host', () => {
    // NAT64 local-use prefix 64:ff9b:1::/48: the IPv4 address may sit where any RFC 6052 layout puts it.
    const loopbackAt96 = '64:ff9b:1::7f00:1';
    const loopbackAt48 = '64:ff9b:1:7f00:0:100::'; // bytes 6-7 and 9-10 (byte 8 is the u octet)
    const loopbackAt64 = '64:ff9b:1:0:7f:0:100::';
    for (const a of [loopbackAt96, loopbackAt48, loopbackAt64]) {
      const d = checkAddress(a, none);
      expect(d.allowed).toBe(false);
      expect(d.allowed === false && d.rule).toContain('reaches the IPv4 host 127.0.0.1');
    }
    expect(checkAddress('64:ff9b:1::8.8.8.8', none).allowed).toBe(true);
    // IPv4-compatible ::a.b.c.d, but :: and ::1 keep their own meaning.
    expect(checkAddress('::10.0.0.1', none)).toMatchObject({
      allowed: false,
      rule: expect.stringContaining('10.0.0.1'),
    });
    expect(checkAddress('::10.0.0.1', { allowCIDRs: ['10.0.0.0/8'] }).allowed).toBe(true);
    expect(checkAddress('::8.8.8.8', none).allowed).toBe(true);
    expect(checkAddress('::1', none)).toMatchObject({ allowed: false, rule: expect.stringContaining('loopback') });
    expect(checkAddress('::1', { allowCIDRs: ['::1/128'] }).allowed).toBe(true);
    // 6to4 2002:AABB:CCDD::/48 relays to AA.BB.CC.DD.
    expect(checkAddress('2002:7f00:1::1', none)).toMatchObject({
      allowed: false,
      rule: expect.stringContaining('127.0.0.1'),
    });
    expect(checkAddress('2002:808:808::1', none).allowed).toBe(true);
  });
});

describe('resolveEgress', () => {
  const answers =
    (...addresses: string[]): Resolver =>
    async () =>
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

  it('returns the checked address of an IP literal without resolving', async () => {
    const never: Resolver = async () => {
      throw new Error('must not resolve a literal');
    };
    await expect(resolveEgress('127.0.0.1', loopbackAllowed, never)).resolves.toEqual({
      address: '127.0.0.1',
      family: 4,
    });
    await expect(resolveEgress('[::1]', loopbackAllowed, never)).resolves.toEqual({ address: '::1', family: 6 });
  });

  it('denies a name if any of its addresses is denied (no picking the public one)', async () => {
    const err = await resolveEgress('mixed.example', none, answers('8.8.8.8', '10.0.0.1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProbeFailure);
    expect((err as ProbeFailure).reason).toBe('EgressDenied');
    expect((err as ProbeFailure).message).toContain('mixed.example (10.0.0.1)');
  });

  it('returns the first address when all are allowed', async () => {
    await expect(resolveEgress('public.example', none, answers('8.8.4.4', '8.8.8.8'))).resolves.toEqual({
      address: '8.8.4.4',
      family: 4,
    });
  });

  it('denies a name resolving to the metadata address even when everything private is allowed', async () => {
    const err = await resolveEgress(
      'metadata.example',
      { allowCIDRs: ['0.0.0.0/0'] },
      answers('169.254.169.254'),
    ).catch((e: unknown) => e);
    expect((err as ProbeFailure).reason).toBe('EgressDenied');
    expect((err as ProbeFailure).message).toContain('cloud metadata');
  });

  it('maps resolution failures to DNSError', async () => {
    const err = await resolveEgress('does-not-exist.invalid', none).catch((e: unknown) => e);
    expect((err as ProbeFailure).reason).toBe('DNSError');
    const empty = await resolveEgress('empty.example', none, answers()).catch((e: unknown) => e);
    expect((empty as ProbeFailure).reason).toBe('DNSError');
  });

  it('resolves localhost through the system resolver and denies it by default', async () => {
    const err = await resolveEgress('localhost', none).catch((e: unknown) => e);
    expect((err as ProbeFailure).reason).toBe('EgressDenied');
    await expect(resolveEgress('localhost', loopbackAllowed)).resolves.toMatchObject({
      address: expect.stringMatching(/^(127\.|::1$)/),
    });
  });
});

/** A loopback listener that records each connection and optionally sends `greeting`. */
async function recordingServer(
  greeting?: Buffer,
): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    if (greeting) socket.write(greeting);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('pinnedDialer (the socket source of the pg, mysql2 and node-redis probes)', () => {
  const ctx = (over: Record<string, unknown> = {}) => ({
    settings: {},
    credentials: {},
    timeoutMs: 2_000,
    egress: loopbackAllowed,
    maxResponseBytes: 1024,
    ...over,
  });

  it('connects every socket to the checked address, whatever host and port the library asks for', async () => {
    const server = await recordingServer();
    const dialer = await pinnedDialer(ctx(), { host: '127.0.0.1', port: server.port });
    try {
      // A library that re-resolved the name (DNS rebinding) or took another port would land elsewhere.
      const socket = dialer.socket().connect(9, '198.51.100.7');
      await once(socket, 'connect');
      expect(socket.remoteAddress).toBe('127.0.0.1');
      expect(socket.remotePort).toBe(server.port);
      expect(server.connections()).toBe(1);
      expect(dialer.connected).toBe(true);
    } finally {
      dialer.destroyAll();
      await server.close();
    }
  });

  it('checks the address before any socket exists: a denied target gets no connection', async () => {
    const server = await recordingServer();
    try {
      await expect(pinnedDialer(ctx({ egress: none }), { host: '127.0.0.1', port: server.port })).rejects.toMatchObject(
        { reason: 'EgressDenied' },
      );
      expect(server.connections()).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('cuts a connection whose server sends more than maxResponseBytes', async () => {
    const server = await recordingServer(Buffer.alloc(4096, 0x41));
    const dialer = await pinnedDialer(ctx(), { host: '127.0.0.1', port: server.port });
    try {
      const socket = dialer.open();
      socket.on('data', () => undefined);
      const [err] = (await once(socket, 'error')) as [Error];
      expect(err).toBeInstanceOf(ProbeFailure);
      expect(dialer.overflow).toMatchObject({ reason: 'UnexpectedResponse' });
      expect(dialer.overflow?.message).toContain('more than 1024 bytes');
    } finally {
      dialer.destroyAll();
      await server.close();
    }
  });
});
