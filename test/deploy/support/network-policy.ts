import type { Manifest } from './kustomize';

/** A pod as NetworkPolicies see it. */
export interface Peer {
  namespace: string;
  labels: Record<string, string>;
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}
interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: unknown;
}
interface PolicyRule {
  from?: PolicyPeer[];
  to?: PolicyPeer[];
  ports?: { protocol?: string; port?: number | string }[];
}
interface PolicySpec {
  podSelector: LabelSelector;
  policyTypes?: ('Ingress' | 'Egress')[];
  ingress?: PolicyRule[];
  egress?: PolicyRule[];
}

export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    if (e.operator === 'In' && !(has && (e.values ?? []).includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && (e.values ?? []).includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** Whether a policy peer is the pod `peer` (seen from a policy in `policyNamespace`). */
function peerMatches(p: PolicyPeer, peer: Peer, policyNamespace: string): boolean {
  // ipBlock: pod addresses are private and every ipBlock in k8s/ excludes the private ranges.
  if (p.ipBlock) return false;
  const namespaceOk = p.namespaceSelector
    ? selects(p.namespaceSelector, { 'kubernetes.io/metadata.name': peer.namespace })
    : peer.namespace === policyNamespace;
  return namespaceOk && selects(p.podSelector, peer.labels);
}

function portMatches(rule: PolicyRule, port: number, protocol: string): boolean {
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((p) => (p.protocol ?? 'TCP') === protocol && (p.port === undefined || p.port === port));
}

/**
 * Whether NetworkPolicies let `from` open a connection to `to` on `port` (named ports are not
 * resolved: k8s/ uses numbers). A side no policy selects (for that direction) is open.
 */
export function allowed(policies: Manifest[], from: Peer, to: Peer, port: number, protocol = 'TCP'): boolean {
  const side = (direction: 'Ingress' | 'Egress', pod: Peer, other: Peer): boolean => {
    const applying = policies.filter((p) => {
      const spec = p.spec as PolicySpec;
      const types = spec.policyTypes ?? (direction === 'Ingress' || spec.egress ? [direction] : []);
      return (p.metadata.namespace ?? '') === pod.namespace && types.includes(direction) && selects(spec.podSelector, pod.labels);
    });
    if (applying.length === 0) return true;
    return applying.some((p) => {
      const spec = p.spec as PolicySpec;
      const rules = (direction === 'Ingress' ? spec.ingress : spec.egress) ?? [];
      return rules.some((rule) => {
        const peers = direction === 'Ingress' ? rule.from : rule.to;
        const peerOk = !peers || peers.length === 0 || peers.some((x) => peerMatches(x, other, pod.namespace));
        return peerOk && portMatches(rule, port, protocol);
      });
    });
  };
  return side('Egress', from, to) && side('Ingress', to, from);
}
