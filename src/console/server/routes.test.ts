import { describe, expect, it } from 'vitest';
import { allowKubeRequest } from './routes.js';

const CONN = '/apis/atoll.dev/v1alpha1/namespaces/acme/externalconnections';

describe('allowKubeRequest', () => {
  it('forwards the panel’s requests with only the query parameters they need', () => {
    expect(allowKubeRequest('GET', `${CONN}?labelSelector=a%3Db&watch=true&timeoutSeconds=999`, undefined)).toEqual({
      path: `${CONN}?labelSelector=a%3Db`,
    });
    expect(
      allowKubeRequest('POST', `${CONN}?fieldManager=atoll-console&dryRun=All`, 'application/json; charset=utf-8'),
    ).toEqual({ path: `${CONN}?fieldManager=atoll-console`, contentType: 'application/json' });
    expect(allowKubeRequest('PATCH', `${CONN}/datadog-eu`, 'application/merge-patch+json')).toEqual({
      path: `${CONN}/datadog-eu`,
      contentType: 'application/merge-patch+json',
    });
    expect(allowKubeRequest('DELETE', `${CONN}/datadog-eu`, undefined)).toEqual({ path: `${CONN}/datadog-eu` });
    expect(allowKubeRequest('GET', '/apis/atoll.dev/v1alpha1/integrationtypes', undefined)).toBeDefined();
    expect(
      allowKubeRequest('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', 'application/json'),
    ).toBeDefined();
  });

  it.each([
    ['GET', '/api/v1/namespaces/acme/secrets'],
    ['GET', '/api/v1/namespaces/acme/secrets/datadog-eu-credentials'],
    ['GET', '/api/v1/secrets'],
    ['GET', '/apis/atoll.dev/v1alpha1/externalconnections'],
    ['GET', `${CONN}/../../../../api/v1/namespaces/acme/secrets`],
    ['GET', `${CONN}/x/..`],
    ['GET', `${CONN}/%2e%2e`],
    ['GET', `${CONN}//x`],
    ['GET', `${CONN}/x/status`],
    ['PUT', `${CONN}/x`],
    ['POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews'],
    ['POST', '/apis/authentication.k8s.io/v1/tokenreviews'],
    ['POST', '/api/v1/namespaces/acme/serviceaccounts/default/token'],
    ['PATCH', '/apis/atoll.dev/v1alpha1/namespaces/acme/workspaces/acme'],
    ['DELETE', '/apis/atoll.dev/v1alpha1/integrationtypes/http-api'],
    ['GET', '/api/v1/namespaces'],
    ['GET', '/apis/rbac.authorization.k8s.io/v1/namespaces/acme/roles'],
  ])('refuses %s %s', (method, path) => {
    expect(allowKubeRequest(method, path, 'application/json')).toBeUndefined();
  });

  it('refuses patch types other than JSON merge patch and bodies without a JSON type', () => {
    expect(allowKubeRequest('PATCH', `${CONN}/x`, 'application/apply-patch+yaml')).toBeUndefined();
    expect(allowKubeRequest('PATCH', `${CONN}/x`, 'application/json-patch+json')).toBeUndefined();
    expect(allowKubeRequest('POST', CONN, 'text/plain')).toBeUndefined();
    expect(allowKubeRequest('POST', CONN, undefined)).toBeUndefined();
  });
});
