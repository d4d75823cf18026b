import type { Workspace } from '../api/v1alpha1/index.js';
import { checkAddress, parseCidr } from '../integrations/egress.js';

/**
 * Workspace checks beyond the CRD schema. Egress CIDRs may open private or
 * loopback ranges only; link-local and metadata addresses stay closed
 * whatever the policy says.
 */
export function checkWorkspace(ws: Workspace): string[] {
  const problems: string[] = [];
  (ws.spec?.policy?.egress?.allowCIDRs ?? []).forEach((cidr, i) => {
    const path = `spec.policy.egress.allowCIDRs[${i}]`;
    const parsed = parseCidr(cidr);
    if (!parsed) {
      problems.push(`${path}: "${cidr}" is not a CIDR such as 10.0.0.0/8`);
      return;
    }
    const base = cidr.split('/')[0]!;
    if (checkAddress(base, { allowCIDRs: [] }).allowed) {
      problems.push(
        `${path}: ${cidr} is a public range; egress policy only opens private or loopback ranges (public addresses are always allowed)`,
      );
    } else if (!checkAddress(base, { allowCIDRs: [cidr] }).allowed) {
      problems.push(`${path}: ${cidr} covers link-local or metadata addresses, which are never allowed`);
    }
  });
  const seen = new Set<string>();
  (ws.spec?.members ?? []).forEach((m, i) => {
    const key = `${m.kind}/${m.name}`;
    if (seen.has(key)) problems.push(`spec.members[${i}]: ${key} is listed twice; give each member one role`);
    seen.add(key);
  });
  return problems;
}
