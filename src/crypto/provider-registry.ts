import { CryptoErrorMessage, DuplicateProviderError, ProviderNotRegisteredError } from './errors.js';
import type { KmsProvider } from './kms-provider.js';

const PROVIDER_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The providers an operator was configured with, by name. Registration is
 * explicit (see `providers/index.ts`) and a duplicate name throws, so a
 * misconfiguration cannot silently route one provider's envelopes to another.
 */
export class ProviderRegistry {
  readonly #providers = new Map<string, KmsProvider>();

  /** Adds a provider; throws DuplicateProviderError if its name is taken. */
  register(provider: KmsProvider): this {
    if (!PROVIDER_NAME.test(provider.name)) throw new TypeError(CryptoErrorMessage.invalidProviderName);
    if (this.#providers.has(provider.name)) throw new DuplicateProviderError();
    this.#providers.set(provider.name, provider);
    return this;
  }

  /** The provider of that name; ProviderNotRegisteredError (terminal) otherwise. */
  get(name: string): KmsProvider {
    const provider = this.#providers.get(name);
    if (!provider) throw new ProviderNotRegisteredError();
    return provider;
  }

  has(name: string): boolean {
    return this.#providers.has(name);
  }

  names(): string[] {
    return [...this.#providers.keys()];
  }

  /** Builds a registry from a plain map (keys must equal the providers' names). */
  static from(providers: Map<string, KmsProvider>): ProviderRegistry {
    const registry = new ProviderRegistry();
    for (const [name, provider] of providers) {
      if (name !== provider.name) throw new TypeError(CryptoErrorMessage.invalidProviderName);
      registry.register(provider);
    }
    return registry;
  }
}
