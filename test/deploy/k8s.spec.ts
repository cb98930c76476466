/**
 * k8s/: the base and the example overlay, rendered by `kubectl kustomize`; the built-in objects
 * validated by kubernetes-validate (strict, Kubernetes 1.30), the KEDA and Prometheus operator
 * ones by kubernetes-models (support/validate-models.mjs), the alert rules by `promtool check
 * rules`; then checked for what the schemas cannot say: references resolve, probes and security
 * follow docs/security.md, workers drain within their grace, scaling reads the right metric,
 * NetworkPolicies allow exactly the paths the parts need, and the dashboard and alerts read only
 * the metrics kernelfleet exposes. Without kubectl, promtool, or python3 and PyPI for
 * kubernetes-validate, the checks that need them fail, saying what to install.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiEnvSchema, workerEnvSchema } from '../../libs/config/src/env-schema';
import { onPath } from './support/external-tool';
import { KUBERNETES_VERSION, kubernetesValidate } from './support/kubernetes-validate';
import { allowed, selects, type Peer } from './support/network-policy';
import { type Manifest, podSpecs, renderKustomization, repoPath } from './support/kustomize';
import { baseMetricName, checkRules, metricNames } from './support/promql';
import { containerCapabilities, securityDocCapabilities } from './support/security-doc';

/** The metrics the dashboard and alerts read (labels in comments); each must be defined in the code. */
const METRICS = [
  'kernelfleet_executions_total', // {tenant, status}
  'kernelfleet_execution_queue_wait_seconds', // histogram
  'kernelfleet_execution_run_duration_seconds', // histogram
  'kernelfleet_queue_jobs', // {queue, state}
  'kernelfleet_kernels', // {state}
  'kernelfleet_sessions_held',
  'kernelfleet_sse_clients',
  'kernelfleet_workers_reaped_total',
  'kernelfleet_kernels_culled_total',
  'kernelfleet_kernels_evicted_total',
  'kernelfleet_executions_no_capacity_total',
];
const HISTOGRAMS = ['kernelfleet_execution_queue_wait_seconds', 'kernelfleet_execution_run_duration_seconds'];

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsUser?: number;
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; emptyDir?: { sizeLimit?: string; medium?: string } }[];
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
  runtimeClassName?: string;
  securityContext?: { runAsUser?: number; runAsNonRoot?: boolean; seccompProfile?: { type: string } };
}

/** kubernetes-models' verdict on custom resources, object by object (support/validate-models.mjs). */
function validateModels(objects: Manifest[]): { id: string; error: string | null }[] {
  const run = spawnSync(process.execPath, [join(__dirname, 'support', 'validate-models.mjs')], {
    input: JSON.stringify(objects),
    encoding: 'utf8',
    cwd: repoPath(),
  });
  if (run.status !== 0) throw new Error(`validate-models.mjs failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as { id: string; error: string | null }[];
}

/**
 * Custom resources (KEDA, Prometheus operator), which kubernetes-validate has no schema for:
 * an API group with a dot that is not *.k8s.io, as Kubernetes names its own groups.
 */
const isCustomResource = (o: Manifest): boolean => {
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  return group.includes('.') && !group.endsWith('.k8s.io');
};

const base = renderKustomization(repoPath('k8s', 'base'));
const overlay = renderKustomization(repoPath('k8s', 'overlays', 'example'));

const find = (objects: Manifest[], kind: string, name: string): Manifest => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};
const podOf = (o: Manifest): PodSpec => ((o.spec as { template: { spec: PodSpec } }).template.spec);
const templateLabels = (o: Manifest): Record<string, string> => ((o.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels);
const container = (o: Manifest, name: string): Container => {
  const c = podOf(o).containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${o.metadata.name}`);
  return c;
};
/** Containers and init containers of a pod spec from podSpecs(). */
const allContainers = (spec: unknown): Container[] => [...(spec as PodSpec).containers, ...((spec as PodSpec).initContainers ?? [])];
const envOf = (c: Container): Record<string, string | undefined> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

describe.each([
  ['k8s/base', base],
  ['k8s/overlays/example', overlay],
])('%s', (where, objects) => {
  const api = find(objects, 'Deployment', 'kernelfleet-api');
  const worker = find(objects, 'Deployment', 'kernelfleet-worker');
  const workerContainer = container(worker, 'worker');
  const apiContainer = container(api, 'api');

  it(`is valid: built-in objects for Kubernetes ${KUBERNETES_VERSION} (kubernetes-validate, strict), custom resources for KEDA and the Prometheus operator (kubernetes-models)`, () => {
    expect(kubernetesValidate(objects.filter((o) => !isCustomResource(o)))).toEqual([]);
    const custom = objects.filter(isCustomResource);
    const results = validateModels(custom);
    expect(results.map((r) => r.id)).toHaveLength(custom.length);
    expect(results.filter((r) => r.error !== null)).toEqual([]);
    const kinds = new Set(objects.map((o) => `${o.apiVersion} ${o.kind}`));
    for (const kind of [
      'apps/v1 Deployment', 'apps/v1 StatefulSet', 'v1 Service', 'v1 ConfigMap', 'autoscaling/v2 HorizontalPodAutoscaler',
      'policy/v1 PodDisruptionBudget', 'networking.k8s.io/v1 NetworkPolicy', 'keda.sh/v1alpha1 ScaledObject',
      'monitoring.coreos.com/v1 ServiceMonitor', 'monitoring.coreos.com/v1 PrometheusRule',
    ]) {
      expect(kinds).toContain(kind);
    }
  });

  it('fails validation on a wrong field type or a misspelt field (the checks bite)', () => {
    const broken = structuredClone(objects);
    podOf(find(broken, 'Deployment', 'kernelfleet-worker')).terminationGracePeriodSeconds = '660' as unknown as number;
    // Only strict validation refuses a field the API does not know; kubernetes-models lets it by.
    Object.assign(container(find(broken, 'Deployment', 'kernelfleet-api'), 'api'), { readinesProbe: apiContainer.readinessProbe });
    expect(kubernetesValidate(broken.filter((o) => !isCustomResource(o))).sort()).toEqual([
      expect.stringMatching(/resource deployment\/kernelfleet-api .*'readinesProbe' was unexpected/),
      expect.stringMatching(/resource deployment\/kernelfleet-worker .*terminationGracePeriodSeconds/),
    ]);
    const scaled = find(broken, 'ScaledObject', 'kernelfleet-worker').spec as { triggers: { metadata: Record<string, unknown> }[] };
    scaled.triggers[0].metadata.threshold = 4;
    const rule = find(broken, 'PrometheusRule', 'kernelfleet').spec as { groups: { rules: { for?: unknown }[] }[] };
    rule.groups[0].rules[0].for = 120;
    const failed = validateModels(broken.filter(isCustomResource)).filter((r) => r.error !== null);
    expect(failed.map((r) => r.id).sort()).toEqual([
      'keda.sh/v1alpha1/ScaledObject/kernelfleet-worker',
      'monitoring.coreos.com/v1/PrometheusRule/kernelfleet',
    ]);
  });

  it('routes every Service, PDB, HPA, ScaledObject and ServiceMonitor to something that exists', () => {
    const workloads = objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind));
    for (const service of objects.filter((o) => o.kind === 'Service')) {
      const spec = service.spec as { selector: Record<string, string>; ports: { name: string; targetPort: string | number }[] };
      const targets = workloads.filter((w) => selects({ matchLabels: spec.selector }, templateLabels(w)));
      expect([service.metadata.name, targets.length]).toEqual([service.metadata.name, 1]);
      const portNames = podOf(targets[0]).containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      for (const port of spec.ports) expect(portNames).toContain(port.targetPort);
    }
    for (const pdb of objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
      const selector = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector;
      expect(workloads.filter((w) => selects(selector, templateLabels(w))).map((w) => w.metadata.name)).toEqual([pdb.metadata.name]);
    }
    const hpa = find(objects, 'HorizontalPodAutoscaler', 'kernelfleet-api').spec as { scaleTargetRef: { kind: string; name: string }; minReplicas: number };
    expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'kernelfleet-api' });
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    for (const monitor of objects.filter((o) => o.kind === 'ServiceMonitor')) {
      const spec = monitor.spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
      const services = objects.filter((o) => o.kind === 'Service' && selects(spec.selector, o.metadata.labels ?? {}));
      expect([monitor.metadata.name, services.map((s) => s.metadata.name)]).toEqual([monitor.metadata.name, [monitor.metadata.name]]);
      const ports = (services[0].spec as { ports: { name: string }[] }).ports.map((p) => p.name);
      for (const endpoint of spec.endpoints) {
        expect(ports).toContain(endpoint.port);
        expect(endpoint.path).toBe('/metrics');
      }
    }
    // The counts belong to the autoscalers: a replicas field would fight them on every apply.
    expect((api.spec as { replicas?: number }).replicas).toBeUndefined();
    expect((worker.spec as { replicas?: number }).replicas).toBeUndefined();
    // Every Secret reference is the one Secret the docs tell operators to create.
    for (const { spec } of podSpecs(objects)) {
      for (const c of allContainers(spec)) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) expect(e.valueFrom.secretKeyRef.name).toBe('kernelfleet');
      }
    }
  });

  it('sets only variables the apps read, and $(VAR) refers to one defined before it', () => {
    const known = (schema: { shape: object }, extra: string[]) => [...Object.keys(schema.shape), ...extra];
    const check = (c: Container, names: string[]) => {
      const seen: string[] = [];
      for (const e of c.env ?? []) {
        expect([c.name, e.name, names.includes(e.name)]).toEqual([c.name, e.name, true]);
        for (const ref of (e.value ?? '').matchAll(/\$\(([A-Z_]+)\)/g)) expect(seen).toContain(ref[1]);
        seen.push(e.name);
      }
    };
    check(apiContainer, known(apiEnvSchema, ['REDIS_PASSWORD']));
    check(workerContainer, known(workerEnvSchema, ['REDIS_PASSWORD', 'HOME']));
    // What python/kernelfleet_netwall.py install reads.
    check(podOf(worker).initContainers?.[0] as Container, ['KERNEL_UID_BASE', 'KERNEL_UID_COUNT', 'KERNEL_NETWORK', 'KERNEL_DENY_EXTRA']);
    expect(envOf(workerContainer).REDIS_URL).toBe('redis://:$(REDIS_PASSWORD)@redis:6379');
    expect(envOf(apiContainer).REDIS_URL).toBe('redis://:$(REDIS_PASSWORD)@redis:6379');
    // Each worker is named after its pod: unique, and kept by a pod restarted in place.
    expect(workerContainer.env?.find((e) => e.name === 'WORKER_ID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
  });

  it('lets a draining worker finish the longest execution: grace >= MAX_TIMEOUT_MS + kill grace + margin', () => {
    const maxTimeoutMs = Number(envOf(apiContainer).MAX_TIMEOUT_MS);
    expect(maxTimeoutMs).toBe(600_000);
    expect((podOf(worker).terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThanOrEqual(maxTimeoutMs + 5_000 + 30_000);
    const strategy = (worker.spec as { strategy: { rollingUpdate: { maxUnavailable: number } } }).strategy;
    expect(strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('probes the api on /health/ready and /health/live, the worker by lease (ready) and metrics port (alive)', () => {
    const apiPort = apiContainer.ports?.[0];
    expect(apiContainer.readinessProbe?.httpGet).toEqual({ path: '/health/ready', port: apiPort?.name });
    expect(apiContainer.livenessProbe?.httpGet).toEqual({ path: '/health/live', port: apiPort?.name });
    expect(workerContainer.readinessProbe?.exec?.command).toEqual(['node', 'scripts/worker-probe.js']);
    expect(existsSync(repoPath('scripts', 'worker-probe.js'))).toBe(true);
    expect(workerContainer.ports).toEqual([{ name: 'metrics', containerPort: 9464 }]);
    expect(workerContainer.livenessProbe?.tcpSocket?.port).toBe('metrics');
    // Liveness must not depend on Redis: a worker keeps its kernels through an outage.
    expect(workerContainer.livenessProbe?.exec).toBeUndefined();
  });

  it('runs the worker as docs/security.md says: root, only the sandbox capabilities, read-only root, no token', () => {
    const pod = podOf(worker);
    const sc = workerContainer.securityContext ?? {};
    expect(sc.runAsUser).toBe(0);
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    expect([...(sc.capabilities?.add ?? [])].sort()).toEqual(securityDocCapabilities());
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.runtimeClassName).toBe('gvisor');
    expect(workerContainer.resources?.limits?.memory).toBeDefined();
  });

  it('gives every path the worker writes a sized emptyDir (kernel folders, sandbox folder, HOME)', () => {
    const env = envOf(workerContainer);
    const volumes = new Map((podOf(worker).volumes ?? []).map((v) => [v.name, v]));
    for (const variable of ['KERNEL_ROOT_DIR', 'KERNEL_SANDBOX_DIR', 'HOME']) {
      const path = env[variable] as string;
      const mount = (workerContainer.volumeMounts ?? []).find((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
      expect([variable, mount?.mountPath]).toEqual([variable, expect.any(String)]);
      const volume = volumes.get(mount?.name as string);
      expect([variable, volume?.emptyDir?.sizeLimit]).toEqual([variable, expect.stringMatching(/^\d+(Mi|Gi)$/)]);
    }
  });

  it('runs the api unprivileged', () => {
    const sc = apiContainer.securityContext ?? {};
    expect(podOf(api).securityContext?.runAsNonRoot).toBe(true);
    expect(podOf(api).securityContext?.runAsUser).not.toBe(0);
    expect(sc.capabilities).toEqual({ drop: ['ALL'] });
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(podOf(api).automountServiceAccountToken).toBe(false);
  });

  it('walls kernels off by uid: an init container with NET_ADMIN alone runs python/kernelfleet_netwall.py install for the worker\'s kernel uids', () => {
    const inits = podOf(worker).initContainers ?? [];
    expect(inits.map((c) => c.name)).toEqual(['kernel-netwall']);
    const [init] = inits;
    expect(init.command).toEqual(['python3', 'python/kernelfleet_netwall.py', 'install']);
    expect(existsSync(repoPath('python', 'kernelfleet_netwall.py'))).toBe(true);
    expect(init.image).toBe(workerContainer.image);
    const sc = init.securityContext ?? {};
    expect(containerCapabilities(sc.capabilities?.drop, sc.capabilities?.add)).toEqual(['NET_ADMIN']);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    // The rules are for the worker's kernels: the same uids and network setting.
    for (const name of ['KERNEL_UID_BASE', 'KERNEL_UID_COUNT', 'KERNEL_NETWORK', 'KERNEL_DENY_EXTRA']) {
      expect([name, envOf(init)[name]]).toEqual([name, envOf(workerContainer)[name]]);
    }
    expect(envOf(workerContainer).KERNEL_NETWORK).toBe('public');
    // The worker cannot change them; it proves them as a kernel at start.
    expect(workerContainer.securityContext?.capabilities?.add).not.toContain('NET_ADMIN');
    // nft takes no lock file and reads no secret.
    expect(init.volumeMounts ?? []).toEqual([]);
    expect((init.env ?? []).filter((e) => e.valueFrom)).toEqual([]);
  });

  it('runs Redis with AOF (appendfsync always), noeviction, a password and a volume claim', () => {
    const redis = find(objects, 'StatefulSet', 'redis');
    const c = container(redis, 'redis');
    const command = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--appendfsync always/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(command).toMatch(/--requirepass/);
    const claims = (redis.spec as { volumeClaimTemplates: { metadata: { name: string } }[] }).volumeClaimTemplates;
    expect(claims.map((t) => t.metadata.name)).toEqual(['data']);
    expect(c.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
  });

  it('scales workers with KEDA on waiting + prioritized + active from kernelfleet_queue_jobs', () => {
    const spec = find(objects, 'ScaledObject', 'kernelfleet-worker').spec as {
      scaleTargetRef: { name: string; kind: string };
      minReplicaCount: number;
      triggers: { type: string; metadata: { query: string; threshold: string } }[];
    };
    expect(spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'kernelfleet-worker' });
    expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(spec.triggers).toHaveLength(2);
    const [trigger, kernels] = spec.triggers;
    // Not redis-lists: BullMQ's prioritized jobs live in a zset, which a list length misses.
    expect(trigger.type).toBe('prometheus');
    expect(metricNames(trigger.metadata.query)).toEqual(['kernelfleet_queue_jobs']);
    const states = /state=~"([^"]+)"/.exec(trigger.metadata.query)?.[1].split('|').sort();
    expect(states).toEqual(['active', 'prioritized', 'waiting']);
    // Every api replica reports the same queue: deduplicate before summing.
    expect(trigger.metadata.query).toMatch(/^sum\(max by \(queue, state\) \(kernelfleet_queue_jobs\{/);
    expect(trigger.metadata.threshold).toBe(envOf(workerContainer).WORKER_CONCURRENCY);
    // Kernel pressure: kernels held plus new sessions waiting for one, per worker's MAX_KERNELS.
    expect(kernels.type).toBe('prometheus');
    expect(metricNames(kernels.metadata.query)).toEqual(['kernelfleet_fleet_kernels', 'kernelfleet_queue_jobs']);
    expect(kernels.metadata.query).toMatch(/queue="kf-shared"/);
    expect(kernels.metadata.threshold).toBe(envOf(workerContainer).MAX_KERNELS);
  });

  it('has alert rules that promtool check rules accepts, and it refuses a broken expression', () => {
    const groups = (find(objects, 'PrometheusRule', 'kernelfleet').spec as { groups: { rules: { expr: string }[] }[] }).groups;
    const count = groups.flatMap((g) => g.rules).length;
    expect(checkRules(groups)).toEqual({ accepted: true, report: expect.stringContaining(`SUCCESS: ${count} rules found`) });
    const broken = structuredClone(groups);
    broken[0].rules[0].expr += ' >';
    expect(checkRules(broken)).toEqual({ accepted: false, report: expect.stringMatching(/KernelfleetApiDown.*could not parse expression/) });
  });

  it('reads only kernelfleet metrics (and up) in alerts, and explains each alert in docs/operations.md', () => {
    const groups = (find(objects, 'PrometheusRule', 'kernelfleet').spec as { groups: { rules: { alert: string; expr: string }[] }[] }).groups;
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(5);
    const operations = readFileSync(repoPath('docs', 'operations.md'), 'utf8');
    for (const rule of rules) {
      const used = metricNames(rule.expr).map((m) => baseMetricName(m, HISTOGRAMS));
      expect([rule.alert, used.filter((m) => m !== 'up' && !METRICS.includes(m))]).toEqual([rule.alert, []]);
      expect(used.length).toBeGreaterThan(0);
      expect([rule.alert, operations.includes(rule.alert)]).toEqual([rule.alert, true]);
    }
  });

  it('reads only metrics the api or a worker defines', () => {
    const sources = ['libs/telemetry/src', 'apps/api/src/metrics', 'apps/worker/src/metrics'].flatMap((dir) =>
      readdirSync(repoPath(dir), { recursive: true, encoding: 'utf8' })
        .filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'))
        .map((file) => readFileSync(repoPath(dir, file), 'utf8')),
    );
    const defined = new Set(sources.flatMap((text) => [...text.matchAll(/'(kernelfleet_[a-z_]+)'/g)].map((m) => m[1])));
    expect(METRICS.filter((name) => !defined.has(name))).toEqual([]);
  });

  it('ships a Grafana dashboard whose panels read only kernelfleet metrics, covering each of them', () => {
    const configMap = find(objects, 'ConfigMap', 'kernelfleet-grafana-dashboard');
    expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
    const dashboard = JSON.parse((configMap.data as Record<string, string>)['kernelfleet-dashboard.json']) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length).toBeGreaterThan(0);
      for (const target of panel.targets) {
        const names = metricNames(target.expr).map((m) => baseMetricName(m, HISTOGRAMS));
        expect([panel.title, names.filter((m) => !METRICS.includes(m))]).toEqual([panel.title, []]);
        names.forEach((m) => used.add(m));
      }
    }
    expect([...used].sort()).toEqual([...METRICS].sort());
    const titles = dashboard.panels.map((p) => p.title).join(' | ');
    for (const wanted of [/Executions by status/, /Queue depth by state/, /Queue wait p50 \/ p99/, /Run time p99/, /Kernels/, /Failovers/]) {
      expect(titles).toMatch(wanted);
    }
  });
});

describe('the kernel network rules for k8s/base\'s worker (python/kernelfleet_netwall.py print)', () => {
  const env = envOf(container(find(base, 'Deployment', 'kernelfleet-worker'), 'worker'));
  const first = Number(env.KERNEL_UID_BASE);
  const last = first + Number(env.KERNEL_UID_COUNT) - 1;
  const printed = spawnSync('python3', ['python/kernelfleet_netwall.py', 'print'], {
    cwd: repoPath(),
    encoding: 'utf8',
    env: {
      ...process.env,
      KERNEL_UID_BASE: env.KERNEL_UID_BASE,
      KERNEL_UID_COUNT: env.KERNEL_UID_COUNT,
      KERNEL_NETWORK: env.KERNEL_NETWORK,
      KERNEL_DENY_EXTRA: '',
    },
  });
  const nft = onPath('nft');

  it('names the worker\'s kernel uid range and refuses this host\'s addresses', () => {
    expect([printed.status, printed.stderr]).toEqual([0, '']);
    expect(first).toBe(2_000_000_000);
    expect(last).toBe(2_000_004_095);
    expect(printed.stdout).toMatch(/^table inet kernelfleet_walls\n/);
    expect(printed.stdout).toContain(`    meta skuid ${first}-${last} jump kernels\n`);
    expect(printed.stdout).toContain('fib daddr type local meta l4proto tcp reject with tcp reset');
    expect(printed.stdout).toMatch(/ip daddr \{[^}]*\b10\.0\.0\.0\/8\b[^}]*\} meta l4proto tcp reject with tcp reset/);
  });

  // A syntax check that changes nothing (`nft -c`); only this part is left out where nft is not
  // on the PATH (the printed ruleset above is checked everywhere). As root nft checks against the
  // host's kernel; otherwise in a user and network namespace of its own, where nft may look.
  it(`is accepted by nft -c -f - (${nft ? `with ${nft}` : 'nft not on the PATH: nothing to run'})`, () => {
    if (!nft) return;
    const root = process.getuid?.() === 0;
    const [command, args] = root ? [nft, ['-c', '-f', '-']] : ['unshare', ['--user', '--map-root-user', '--net', nft, '-c', '-f', '-']];
    const check = spawnSync(command, args, { input: printed.stdout, encoding: 'utf8' });
    expect([check.status, check.stderr]).toEqual([0, '']);
  });
});

describe('k8s/overlays/example', () => {
  const ns = 'kernelfleet';
  const policies = overlay.filter((o) => o.kind === 'NetworkPolicy');
  const pod = (component: string, namespace = ns): Peer => ({ namespace, labels: { 'app.kubernetes.io/name': 'kernelfleet', 'app.kubernetes.io/component': component } });
  const prometheus: Peer = { namespace: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } };
  const ingress: Peer = { namespace: 'ingress-nginx', labels: { 'app.kubernetes.io/name': 'ingress-nginx' } };
  const stranger: Peer = { namespace: ns, labels: { app: 'debug' } };

  it('puts every object in the namespace, with the registry images and the part-of label', () => {
    for (const o of overlay) {
      if (o.kind === 'Namespace') expect(o.metadata.namespace).toBeUndefined();
      else expect([o.kind, o.metadata.name, o.metadata.namespace]).toEqual([o.kind, o.metadata.name, ns]);
      expect(o.metadata.labels?.['app.kubernetes.io/part-of']).toBe('kernelfleet');
    }
    const images = podSpecs(overlay).flatMap(({ spec }) => allContainers(spec).map((c) => c.image));
    expect(images.sort()).toEqual([
      'redis:7.4-bookworm',
      'registry.example.com/kernelfleet/api:0.1.0',
      'registry.example.com/kernelfleet/worker:0.1.0',
      'registry.example.com/kernelfleet/worker:0.1.0',
    ]);
  });

  it('applies the strategic merge patch (env merged by name) and the JSON 6902 patch', () => {
    const worker = container(find(overlay, 'Deployment', 'kernelfleet-worker'), 'worker');
    const env = envOf(worker);
    expect(env.MAX_KERNELS).toBe('8');
    expect(env.KERNEL_ROOT_DIR).toBe(envOf(container(find(base, 'Deployment', 'kernelfleet-worker'), 'worker')).KERNEL_ROOT_DIR);
    expect(worker.env?.filter((e) => e.name === 'MAX_KERNELS')).toHaveLength(1);
    expect(worker.resources?.limits).toMatchObject({ memory: '8Gi', 'ephemeral-storage': '24Gi' });
    expect(worker.volumeMounts?.length).toBe(3);
    const scaled = find(overlay, 'ScaledObject', 'kernelfleet-worker').spec as { maxReplicaCount: number; triggers: { metadata: { query: string } }[] };
    expect(scaled.maxReplicaCount).toBe(40);
    expect(scaled.triggers[0].metadata.query).toContain('namespace="kernelfleet"');
    expect(scaled.triggers[1].metadata.query).toContain('namespace="kernelfleet"');
    expect((scaled.triggers[1].metadata as { threshold?: string }).threshold).toBe(env.MAX_KERNELS);
  });

  it('lets through exactly the connections the parts need', () => {
    const paths: [string, Peer, Peer, number, boolean][] = [
      ['api → redis', pod('api'), pod('redis'), 6379, true],
      ['worker → redis', pod('worker'), pod('redis'), 6379, true],
      ['ingress → api', ingress, pod('api'), 8080, true],
      ['prometheus → api metrics', prometheus, pod('api'), 8080, true],
      ['prometheus → worker metrics', prometheus, pod('worker'), 9464, true],
      ['other pod → redis', stranger, pod('redis'), 6379, false],
      ['ingress → redis', ingress, pod('redis'), 6379, false],
      ['worker → api', pod('worker'), pod('api'), 8080, false],
      ['api → worker', pod('api'), pod('worker'), 9464, false],
      ['ingress → worker', ingress, pod('worker'), 9464, false],
      ['worker (kernels) → other pod', pod('worker'), stranger, 80, false],
      ['redis → api', pod('redis'), pod('api'), 8080, false],
      ['another namespace → redis', pod('worker', 'elsewhere'), pod('redis'), 6379, false],
    ];
    const outcome = paths.map(([name, from, to, port]) => [name, allowed(policies, from, to, port)]);
    expect(outcome).toEqual(paths.map(([name, , , , expected]) => [name, expected]));
    const dns: Peer = { namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } };
    for (const component of ['api', 'worker', 'redis']) expect(allowed(policies, pod(component), dns, 53, 'UDP')).toBe(true);
  });
});
