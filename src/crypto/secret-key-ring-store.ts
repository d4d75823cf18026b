import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { isAlreadyExists, isConflict } from '../kube/errors.js';
import { Secrets } from '../kube/resources.js';
import { ConflictError } from './errors.js';
import {
  keyRingFromSecretData,
  keyRingToSecretData,
  type KeyRing,
  type KeyRingStore,
} from './providers/local-key-ring.js';

interface Secret extends KubeObject {
  data?: Record<string, string>;
  type?: string;
}

/** Secret (in the operator's namespace) holding the local provider's key ring. */
export const KEY_RING_SECRET = 'atoll-local-kms';
/** Secret holding the HMAC key for credential fingerprints. */
export const FINGERPRINT_SECRET = 'atoll-fingerprint-key';

const LABELS = { 'app.kubernetes.io/managed-by': 'atoll', 'app.kubernetes.io/component': 'kms' };

/**
 * The local provider's key ring in a Secret, with optimistic concurrency on
 * resourceVersion so two replicas never overwrite each other's new keys.
 */
export class SecretKeyRingStore implements KeyRingStore {
  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly name = KEY_RING_SECRET,
  ) {}

  async load(): Promise<KeyRing | undefined> {
    const s = await this.client.tryGet<Secret>(Secrets, this.name, this.namespace);
    if (!s) return undefined;
    return keyRingFromSecretData(s.data ?? {}, s.metadata?.resourceVersion);
  }

  async save(ring: KeyRing, previous: KeyRing | undefined): Promise<void> {
    const data = keyRingToSecretData(ring); // already base64, Secret-ready
    try {
      if (!previous) {
        await this.client.create<Secret>(Secrets, {
          metadata: { name: this.name, namespace: this.namespace, labels: LABELS },
          type: 'Opaque',
          data,
        });
      } else {
        await this.client.replace<Secret>(Secrets, {
          metadata: { name: this.name, namespace: this.namespace, labels: LABELS, resourceVersion: previous.revision },
          type: 'Opaque',
          data,
        });
      }
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) throw new ConflictError();
      throw err;
    }
  }
}

/**
 * The 32-byte key that makes credential fingerprints keyed: without it, a
 * fingerprint of a short password could be brute-forced offline. Created on
 * first start; every replica reads the same one.
 */
export async function loadFingerprintKey(client: KubeClient, namespace: string): Promise<Buffer> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const s = await client.tryGet<Secret>(Secrets, FINGERPRINT_SECRET, namespace);
    const existing = s?.data?.key;
    if (existing) return Buffer.from(existing, 'base64');
    try {
      await client.create<Secret>(Secrets, {
        metadata: {
          name: FINGERPRINT_SECRET,
          namespace,
          labels: { ...LABELS, 'app.kubernetes.io/component': 'fingerprint' },
        },
        type: 'Opaque',
        data: { key: randomBytes(32).toString('base64') },
      });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
  throw new Error('could not create or read the fingerprint key Secret');
}
