/** What `atoll dev` writes to state.json, plus the directory it lives in. */
export interface DevState {
  dir: string;
  kubeconfig: string;
  server: string;
  etcd: { endpoints: string[] };
  /** The gateway serves HTTPS; caFile is the PEM CA that issued its certificate. */
  gateway: { url: string; caFile: string };
  /** The Integrations panel; `demoWorkspace` is the namespace whose member the printed sign-in link signs in. */
  console: { url: string; demoWorkspace: string };
  controller: { health: string; metrics: string; webhookPort: number };
  kms: { provider: string; keyId: string };
  log: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    atoll: DevState;
  }
}
