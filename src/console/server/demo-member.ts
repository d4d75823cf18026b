import { isAlreadyExists } from '../../kube/errors.js';
import type { KubeClient } from '../../kube/client.js';
import { Namespaces, ServiceAccounts, Workspaces } from '../../kube/resources.js';

export const DEMO_NAMESPACE = 'demo';
export const DEMO_MEMBER = 'console-demo';

/**
 * For `atoll dev`: a demo workspace with a ServiceAccount editor, and a
 * short-lived token for it from the TokenRequest API, so the sign-in link
 * opens the panel as a workspace member (never as the cluster admin). The
 * workspace may reach loopback services, so local fixtures can be tested.
 */
export async function demoMemberToken(
  admin: KubeClient,
  expirationSeconds = 12 * 3600,
): Promise<{ namespace: string; token: string }> {
  const ignoreExisting = (err: unknown) => {
    if (!isAlreadyExists(err)) throw err;
  };
  await admin.create(Namespaces, { metadata: { name: DEMO_NAMESPACE } }).catch(ignoreExisting);
  await admin
    .create(ServiceAccounts, { metadata: { name: DEMO_MEMBER, namespace: DEMO_NAMESPACE } })
    .catch(ignoreExisting);
  await admin
    .create(Workspaces, {
      metadata: { name: DEMO_NAMESPACE, namespace: DEMO_NAMESPACE },
      spec: {
        displayName: 'Demo workspace',
        members: [{ kind: 'ServiceAccount', name: DEMO_MEMBER, role: 'editor' }],
        policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } },
      },
    } as never)
    .catch(ignoreExisting);
  const review = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${DEMO_NAMESPACE}/serviceaccounts/${DEMO_MEMBER}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds },
    },
  );
  return { namespace: DEMO_NAMESPACE, token: review.status.token };
}

/**
 * The sign-in link: the token travels in the URL fragment, which browsers
 * never send to a server; the app removes it from the address bar and
 * history at once, names whom it signs in as, and makes a session only when
 * the person clicks Continue (a link can come from anyone: login CSRF).
 */
export function signInLink(consoleURL: string, token: string, workspace?: string): string {
  const params = new URLSearchParams({ token, ...(workspace ? { workspace } : {}) });
  return `${consoleURL}/#${params.toString()}`;
}
