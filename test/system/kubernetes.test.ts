/**
 * deploy/kubernetes/: every manifest document is validated against the Kubernetes API schemas
 * of the kubernetes-models package (kind and apiVersion must name a model it has; types,
 * required fields and enums are its schema's), and then held to what docs/scaling.md promises:
 * references resolve, selectors select, one main with Recreate on a ReadWriteOnce volume, GPUs
 * on the nodes, the hardening of deploy/llamactl.service, placeholders for keys, and llamactl
 * configs that llamactl itself loads. No cluster is needed.
 */
import { describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadConfig } from '../../src/config/load'
import { tempDir } from '../helpers'

const DIR = resolve(import.meta.dir, '../../deploy/kubernetes')
type Obj = Record<string, any>

interface Doc {
  file: string
  index: number
  doc: Obj
}

/** The model class kubernetes-models has for an apiVersion and kind, or null when it has none. */
async function modelFor(apiVersion: unknown, kind: unknown): Promise<(new (data: Obj) => { validate(): void }) | null> {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^[A-Za-z0-9.]+(\/[A-Za-z0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null
  const path = apiVersion.includes('/') ? apiVersion : `v1`
  if (!apiVersion.includes('/') && apiVersion !== 'v1') return null
  try {
    const mod = (await import(`kubernetes-models/${path}/${kind}`)) as Record<string, unknown>
    const model = mod[kind] as (new (data: Obj) => { validate(): void }) & { apiVersion?: string; kind?: string }
    if (typeof model !== 'function' || model.apiVersion !== apiVersion || model.kind !== kind) return null
    return model
  } catch {
    return null
  }
}

/** Validates one document: null when it is valid, else why not. */
async function invalid(doc: unknown): Promise<string | null> {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return 'not a mapping'
  const { apiVersion, kind } = doc as Obj
  const Model = await modelFor(apiVersion, kind)
  if (!Model) return `no Kubernetes schema for apiVersion ${JSON.stringify(apiVersion)} kind ${JSON.stringify(kind)}`
  try {
    new Model(structuredClone(doc as Obj)).validate()
    return null
  } catch (e) {
    return (e as Error).message
  }
}

function parseAll(text: string): Obj[] {
  const parsed = Bun.YAML.parse(text) as unknown
  // one document is the document itself; several are an array of them
  return (text.split('\n').some((l) => l.trim() === '---') ? (parsed as Obj[]) : [parsed as Obj]).filter((d) => d !== null)
}

const manifestFiles = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()
const docs: Doc[] = manifestFiles.flatMap((file) => parseAll(readFileSync(join(DIR, file), 'utf8')).map((doc, index) => ({ file, index, doc })))
const of = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc)
const one = (kind: string, name: string) => {
  const found = of(kind).filter((d) => d.metadata?.name === name)
  if (found.length !== 1) throw new Error(`${found.length} ${kind}s named ${name}`)
  return found[0]!
}
const workloads = () => [...of('Deployment'), ...of('DaemonSet')]
const podSpecs = () => workloads().map((w) => ({ name: `${w.kind}/${w.metadata.name}`, spec: w.spec.template.spec as Obj }))

describe('deploy/kubernetes against the Kubernetes schemas (kubernetes-models)', () => {
  test('the manifests hold the objects docs/scaling.md names', () => {
    const kinds = docs.map((d) => `${d.doc.kind}/${d.doc.metadata?.name}`).sort()
    expect(kinds).toEqual(
      [
        'ConfigMap/llamactl-config',
        'DaemonSet/llamactl-node',
        'Deployment/llamactl-main',
        'Namespace/llamactl',
        'PersistentVolumeClaim/llamactl-main-data',
        'Secret/llamactl-keys',
        'Service/llamactl',
        'Service/llamactl-nodes',
      ].sort(),
    )
  })

  test('every document is valid for its kind and apiVersion', async () => {
    const problems: string[] = []
    for (const d of docs) {
      const why = await invalid(d.doc)
      if (why) problems.push(`${d.file} document ${d.index + 1}: ${why}`)
    }
    expect(problems).toEqual([])
  })

  test('the validation fails a broken manifest: a wrong field type, a missing required field, an unknown kind or apiVersion', async () => {
    const ds = structuredClone(one('DaemonSet', 'llamactl-node'))
    ds.spec.template.spec.containers[0].ports[0].containerPort = 'eighty'
    expect(await invalid(ds)).toContain('containerPort must be integer')

    const dep = structuredClone(one('Deployment', 'llamactl-main'))
    dep.spec.replicas = '1'
    expect(await invalid(dep)).toContain('replicas must be integer')
    delete dep.spec.replicas
    delete dep.spec.selector
    expect(await invalid(dep)).toMatch(/must have required property '?selector/)

    const svc = structuredClone(one('Service', 'llamactl'))
    svc.spec.ports[0].protocol = 'QUIC'
    expect(await invalid(svc)).toContain('must be equal to one of the allowed values')

    expect(await invalid({ ...one('Service', 'llamactl'), apiVersion: 'apps/v1' })).toContain('no Kubernetes schema')
    expect(await invalid({ ...one('Deployment', 'llamactl-main'), apiVersion: 'apps/v2' })).toContain('no Kubernetes schema')
    expect(await invalid({ ...one('Deployment', 'llamactl-main'), kind: 'Deploymnet' })).toContain('no Kubernetes schema')
  })

  test('kustomization.yaml lists every manifest, once', () => {
    const k = Bun.YAML.parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as Obj
    expect(k.kind).toBe('Kustomization')
    expect([...k.resources].sort()).toEqual(manifestFiles)
  })
})

describe('what the manifests promise', () => {
  test('every namespaced object is in the llamactl namespace', () => {
    for (const d of docs) if (d.doc.kind !== 'Namespace') expect(`${d.doc.kind}/${d.doc.metadata.name} in ${d.doc.metadata.namespace}`).toBe(`${d.doc.kind}/${d.doc.metadata.name} in llamactl`)
  })

  test('selectors select their own pods, and the Services select the pods they front', () => {
    for (const w of workloads()) {
      const labels = w.spec.template.metadata.labels as Obj
      for (const [k, v] of Object.entries(w.spec.selector.matchLabels as Obj)) expect(`${w.metadata.name}: ${k}=${labels[k]}`).toBe(`${w.metadata.name}: ${k}=${v}`)
    }
    const selects = (svc: Obj) => workloads().filter((w) => Object.entries(svc.spec.selector as Obj).every(([k, v]) => w.spec.template.metadata.labels[k] === v)).map((w) => w.metadata.name)
    expect(selects(one('Service', 'llamactl'))).toEqual(['llamactl-main'])
    expect(selects(one('Service', 'llamactl-nodes'))).toEqual(['llamactl-node'])
    expect(one('Service', 'llamactl-nodes').spec.clusterIP).toBe('None')
    // a Service's named targetPort is a port of the pods it selects
    for (const svc of of('Service')) {
      const w = workloads().find((x) => selects(svc).includes(x.metadata.name))!
      const names = w.spec.template.spec.containers.flatMap((c: Obj) => (c.ports ?? []).map((p: Obj) => p.name))
      for (const p of svc.spec.ports) expect(names).toContain(p.targetPort)
    }
  })

  test('every volume, ConfigMap key, Secret key and claim a pod names exists', () => {
    const config = one('ConfigMap', 'llamactl-config')
    const secret = one('Secret', 'llamactl-keys')
    for (const { name, spec } of podSpecs()) {
      const volumes = new Map((spec.volumes as Obj[]).map((v) => [v.name, v]))
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        for (const m of c.volumeMounts ?? []) expect(`${name}/${c.name} mounts ${m.name}: ${volumes.has(m.name)}`).toBe(`${name}/${c.name} mounts ${m.name}: true`)
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef
          if (ref) expect(`${ref.name}/${ref.key}: ${ref.name === secret.metadata.name && ref.key in secret.stringData}`).toBe(`${ref.name}/${ref.key}: true`)
        }
      }
      for (const v of volumes.values()) {
        if (v.configMap) {
          expect(v.configMap.name).toBe(config.metadata.name)
          for (const item of v.configMap.items) expect(Object.keys(config.data)).toContain(item.key)
        }
        if (v.persistentVolumeClaim) one('PersistentVolumeClaim', v.persistentVolumeClaim.claimName)
      }
      // the config file each llamactl is started with is the one its volume holds
      const main = spec.containers.find((c: Obj) => c.name === 'llamactl')
      const file = main.args[main.args.indexOf('--config') + 1] as string
      const mount = main.volumeMounts.find((m: Obj) => m.name === 'config')
      const item = volumes.get('config')!.configMap.items[0]
      expect(file).toBe(`${mount.mountPath}/${item.path}`)
    }
  })

  test('one main: replicas 1, Recreate, its SQLite on a ReadWriteOnce claim; the nodes ask for GPUs on GPU hosts', () => {
    const main = one('Deployment', 'llamactl-main')
    expect(main.spec.replicas).toBe(1)
    expect(main.spec.strategy.type).toBe('Recreate')
    expect(one('PersistentVolumeClaim', 'llamactl-main-data').spec.accessModes).toEqual(['ReadWriteOnce'])
    const data = main.spec.template.spec.volumes.find((v: Obj) => v.name === 'data')
    expect(data.persistentVolumeClaim.claimName).toBe('llamactl-main-data')

    const node = one('DaemonSet', 'llamactl-node').spec.template.spec
    const container = node.containers.find((c: Obj) => c.name === 'llamactl')
    expect(Number(container.resources.limits['nvidia.com/gpu'])).toBeGreaterThanOrEqual(1)
    expect(node.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' })
    expect(node.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' })
    const models = node.volumes.find((v: Obj) => v.name === 'models')
    expect(models.hostPath ?? models.persistentVolumeClaim).toBeDefined()
    // each node calls itself by its Kubernetes node's name
    expect(container.env.find((e: Obj) => e.name === 'LLAMACTL_LOCAL_NODE').valueFrom.fieldRef.fieldPath).toBe('spec.nodeName')
  })

  test('hardened as deploy/llamactl.service: non-root, no privilege escalation, no capabilities, read-only root, RuntimeDefault seccomp, no API token', () => {
    for (const { name, spec } of podSpecs()) {
      expect(`${name} ${spec.securityContext.runAsNonRoot} ${spec.securityContext.seccompProfile.type}`).toBe(`${name} true RuntimeDefault`)
      expect(spec.securityContext.runAsUser).toBeGreaterThan(0)
      expect(spec.automountServiceAccountToken).toBe(false)
      expect(spec.hostNetwork ?? false).toBe(false)
      expect(spec.hostPID ?? false).toBe(false)
      for (const c of spec.containers) {
        expect(`${name}/${c.name}: ${JSON.stringify(c.securityContext)}`).toBe(
          `${name}/${c.name}: ${JSON.stringify({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } })}`,
        )
        expect(c.resources.limits.memory).toBeDefined()
      }
      // the one root step: the nodes' init container, with only CHOWN and FOWNER, no escalation
      for (const c of spec.initContainers ?? []) {
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false)
        expect(c.securityContext.readOnlyRootFilesystem).toBe(true)
        expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['CHOWN', 'FOWNER'] })
      }
      // hostPath only for the node's data and model folders
      for (const v of spec.volumes) if (v.hostPath) expect(['/var/lib/llamactl', '/var/lib/llamactl-models']).toContain(v.hostPath.path)
    }
  })

  test('the Secret holds placeholders only, and no key is written anywhere else', () => {
    const secret = one('Secret', 'llamactl-keys')
    for (const v of Object.values(secret.stringData as Obj)) expect(v).toMatch(/^REPLACE-WITH-/)
    expect(secret.data).toBeUndefined()
    for (const d of docs) {
      if (d.doc.kind === 'Secret') continue
      const text = JSON.stringify(d.doc)
      expect(text).not.toMatch(/REPLACE-WITH-/)
      for (const e of workloads().flatMap((w) => w.spec.template.spec.containers.flatMap((c: Obj) => c.env ?? []))) {
        if (/KEY/.test(e.name)) expect(e.value).toBeUndefined()
      }
    }
  })

  test('the ConfigMap holds llamactl configs that llamactl loads, with the keys from the environment, and refuses without them', () => {
    const config = one('ConfigMap', 'llamactl-config')
    const dir = tempDir()
    const keys = { LLAMACTL_MANAGEMENT_KEY: 'k8s-test-management-key-0123', LLAMACTL_INFERENCE_KEY: 'k8s-test-inference-key-01234', LLAMACTL_NODE_KEY: 'k8s-test-node-key-0123456789' }
    const load = (name: string, env: Record<string, string>) => {
      const path = join(dir, name)
      writeFileSync(path, config.data[name])
      return loadConfig({ configPath: path, env, cwd: dir, home: dir })
    }
    const main = load('main.yaml', keys).config
    expect(main.server.host).toBe('0.0.0.0')
    expect(main.server.port).toBe(8080)
    expect(main.data_dir).toBe('/var/lib/llamactl')
    expect(main.auth.management_keys).toEqual([keys.LLAMACTL_MANAGEMENT_KEY])
    expect(main.auth.inference_keys).toEqual([keys.LLAMACTL_INFERENCE_KEY])
    // llamactl adds itself under local_node, with no address
    expect(main.local_node).toBe('main')
    expect(main.nodes.main?.address).toBe('')
    const remote = Object.entries(main.nodes).filter(([name]) => name !== main.local_node).map(([, n]) => n)
    expect(Object.keys(main.nodes).sort()).toEqual(['gpu-node-1', 'gpu-node-2', 'main'])
    for (const n of remote) {
      expect(n.api_key).toBe(keys.LLAMACTL_NODE_KEY)
      expect(n.address).toMatch(/^http:\/\/[a-z0-9.-]+:8080$/)
    }
    const node = load('node.yaml', { ...keys, LLAMACTL_LOCAL_NODE: 'gpu-node-1' }).config
    expect(node.local_node).toBe('gpu-node-1')
    expect(node.auth.management_keys).toEqual([keys.LLAMACTL_NODE_KEY])
    expect(node.backends['llama-cpp'].command).toBe('/usr/local/bin/llama-server')
    // the main's key for a node is that node's management key
    for (const n of remote) expect(n.api_key).toBe(node.auth.management_keys[0]!)
    // the Deployment's port is the one the config listens on
    expect(one('Deployment', 'llamactl-main').spec.template.spec.containers[0].ports[0].containerPort).toBe(main.server.port)
    // a key's ${VAR} left unset stops start-up: a Secret not mounted is never a working key
    expect(() => load('main.yaml', {})).toThrow(/LLAMACTL_MANAGEMENT_KEY/)
    expect(() => load('node.yaml', {})).toThrow(/LLAMACTL_NODE_KEY/)
  })
})
