export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface CredentialField {
  name: string;
  displayName?: string;
  required?: boolean;
  description?: string;
}

export interface JsonSchema {
  type?: string;
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  enum?: unknown[];
  [k: string]: unknown;
}

export interface IntegrationType {
  metadata: { name: string };
  spec: {
    displayName: string;
    category?: string;
    description?: string;
    documentationURL?: string;
    settingsSchema?: JsonSchema;
    credentialFields?: CredentialField[];
    probe?: { driver?: string; http?: { url?: string; auth?: { type?: string } } };
    gateway?: { baseURL?: string; auth?: { type?: string } };
  };
}

export interface Connection {
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: {
    type: string;
    displayName?: string;
    settings?: Record<string, unknown>;
    credentials?: Record<string, { sealed?: boolean; secretKeyRef?: { name: string; key: string } }>;
  };
  status?: {
    conditions?: Condition[];
    credentials?: Record<string, { hint?: string; version?: number; updatedAt?: string }>;
    lastProbe?: { time?: string; durationMs?: number; result?: string; message?: string };
  };
}

export interface Workspace {
  namespace: string;
  displayName?: string;
  canEdit: boolean;
}

export interface User {
  username: string;
  groups: string[];
}
