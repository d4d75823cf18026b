import { describe, expect, it } from 'vitest';
import { ScramClient, ScramError } from './scram-sha-256.js';

// RFC 7677 section 3: the SCRAM-SHA-256 example exchange (user "user", password "pencil").
const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const clientFinal = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const serverFinal = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('ScramClient', () => {
  it('reproduces the RFC 7677 example exchange', async () => {
    const client = new ScramClient('pencil', clientNonce, 'user');
    expect(client.clientFirstMessage).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    expect(await client.respond(serverFirst)).toBe(clientFinal);
    expect(() => client.verify(serverFinal)).not.toThrow();
  });

  it('rejects a server that cannot prove it knows the password', async () => {
    const client = new ScramClient('not-pencil', clientNonce, 'user');
    await client.respond(serverFirst);
    expect(() => client.verify(serverFinal)).toThrow(ScramError);
  });

  it('rejects a server nonce that does not extend the client nonce', async () => {
    const client = new ScramClient('pencil', 'another-nonce', 'user');
    await expect(client.respond(serverFirst)).rejects.toThrow(/nonce/);
  });

  it('refuses an absurd iteration count instead of burning CPU', async () => {
    const client = new ScramClient('pencil', clientNonce, 'user');
    await expect(client.respond(serverFirst.replace('i=4096', 'i=900000000'))).rejects.toThrow(/iteration/);
  });

  it('reports an e= server-final-message as a rejection', async () => {
    const client = new ScramClient('pencil', clientNonce, 'user');
    await client.respond(serverFirst);
    expect(() => client.verify('e=invalid-proof')).toThrow(/rejected/);
  });
});
