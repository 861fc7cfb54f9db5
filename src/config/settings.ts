/**
 * Every configuration key llamactl reads, in one table: its YAML path, environment variable,
 * command-line flag, type and default. The `Config` type, loading and validation, the `--help`
 * text, `--print-config`, GET /api/v1/config and docs/configuration.md all come from here, so a
 * key cannot exist in one place and not another.
 *
 * Key and variable names follow the original llamactl's, so its users can bring their config;
 * the spellings its older releases used are rows of ALIASES below.
 */

export type Kind =
  | 'string'
  | 'path' // a string in which a leading ~ is the home folder
  | 'enum' // one of `values`
  | 'int'
  | 'bool'
  | 'list' // YAML list; env: comma-separated
  | 'args' // YAML list; env: space-separated
  | 'map' // YAML mapping of strings; env: KEY=value,KEY=value
  | 'int_map' // YAML mapping of whole numbers; env: name=2,name=1
  | 'port_range' // "8000-9000", "8000,9000" or [8000, 9000]
  | 'duration' // seconds; "90s", "5m", "1h30m" or a whole number of seconds
  | 'nodes' // mapping of node names to { address, api_key, ca_file }

export interface NodeConfig {
  address: string
  api_key: string
  /** PEM bundle trusted for an https:// address (empty: nodes_ca_file, else the system's). */
  ca_file?: string
}

interface KindTypes {
  string: string
  path: string
  enum: string
  int: number
  bool: boolean
  list: string[]
  args: string[]
  map: Record<string, string>
  int_map: Record<string, number>
  port_range: [number, number]
  duration: number
  nodes: Record<string, NodeConfig>
}

/**
 * How a key is used. `later`: read and checked now, used once its feature is built; until then
 * start-up says so when the key is set. `inert`: accepted so a config written for the original
 * loads, with nothing for it to do here; start-up says so when it is set.
 */
export type Use = 'yes' | 'later' | 'inert'

export interface Setting {
  key: string
  kind: Kind
  default: unknown
  env?: string
  flag?: string
  /** For `enum`. */
  values?: readonly string[]
  min?: number
  max?: number
  /** For `path`: a relative value is taken inside this folder. */
  under?: 'data_dir'
  /** Never shown: --print-config and GET /api/v1/config mask it. */
  secret?: boolean
  use?: Use
  /** With `later`/`inert`: why it has no effect yet, as start-up says it. */
  why?: string
  doc: string
}

/**
 * Another name for a key: an older spelling in YAML (`key`) or as a variable (`env`), or a name
 * other tools use (`LLAMA_CACHE`). A deprecated one works and start-up names its new spelling.
 */
export interface Alias {
  key?: string
  env?: string
  for: string
  deprecated: boolean
}

export const BACKENDS = {
  'llama-cpp': { envPrefix: 'LLAMACPP', command: 'llama-server' },
  mlx: { envPrefix: 'MLX', command: 'mlx_lm.server' },
  vllm: { envPrefix: 'VLLM', command: 'vllm' },
} as const
export type BackendKey = keyof typeof BACKENDS

function backendSettings<N extends BackendKey>(name: N) {
  const env = `LLAMACTL_${BACKENDS[name].envPrefix}` as const
  const base = `backends.${name}` as const
  return [
    { key: `${base}.command`, kind: 'path', default: BACKENDS[name].command, env: `${env}_COMMAND`, doc: `executable for ${name} instances` },
    { key: `${base}.args`, kind: 'args', default: [], env: `${env}_ARGS`, doc: name === 'vllm' ? 'arguments put before every instance\'s own (llamactl adds `serve` itself; a leading `serve`, as the original\'s default has, is taken as that)' : 'arguments put before every instance\'s own' },
    { key: `${base}.environment`, kind: 'map', default: {}, env: `${env}_ENV`, doc: 'environment for every instance of this backend' },
    { key: `${base}.docker.enabled`, kind: 'bool', default: false, env: `${env}_DOCKER_ENABLED`, doc: 'run instances in Docker (an instance\'s docker_enabled decides for itself)' },
    { key: `${base}.docker.image`, kind: 'string', default: '', env: `${env}_DOCKER_IMAGE`, doc: 'Docker image; its entrypoint is the server (for vLLM: `vllm serve`)' },
    { key: `${base}.docker.args`, kind: 'args', default: [], env: `${env}_DOCKER_ARGS`, doc: 'arguments to `docker run` (a leading `run` is allowed); llamactl adds `--rm`, `--name llamactl-<instance>`, `--network host` unless you give a network, and `-e` for the environment' },
    { key: `${base}.docker.environment`, kind: 'map', default: {}, env: `${env}_DOCKER_ENV`, doc: 'environment passed into the container (with `environment` and the instance\'s own)' },
    { key: `${base}.docker.command`, kind: 'path', default: 'docker', env: `${env}_DOCKER_COMMAND`, doc: 'the Docker client (or a compatible one such as podman)' },
    { key: `${base}.response_headers`, kind: 'map', default: {}, env: `${env}_RESPONSE_HEADERS`, doc: 'headers added to every proxied response' },
  ] as const
}

const ROWS = [
  { key: 'server.host', kind: 'string', default: '127.0.0.1', env: 'LLAMACTL_HOST', flag: '--host', doc: 'address to listen on (0.0.0.0 for every interface)' },
  { key: 'server.port', kind: 'int', default: 8080, env: 'LLAMACTL_PORT', flag: '--port', min: 0, max: 65535, doc: 'port to listen on (0 picks a free one)' },
  { key: 'server.allowed_origins', kind: 'list', default: [], env: 'LLAMACTL_ALLOWED_ORIGINS', doc: 'origins allowed cross-origin access (CORS)' },
  { key: 'server.allowed_hosts', kind: 'list', default: [], env: 'LLAMACTL_ALLOWED_HOSTS', doc: 'host names llamactl is served under besides localhost, IP addresses, the machine\'s name and server.host (`.example.com` for a domain and its subdomains, `*` for any); other Host headers get 403 (DNS rebinding)' },
  { key: 'server.allowed_headers', kind: 'list', default: [], env: 'LLAMACTL_ALLOWED_HEADERS', doc: 'extra request headers allowed cross-origin' },
  { key: 'server.enable_swagger', kind: 'bool', default: false, env: 'LLAMACTL_ENABLE_SWAGGER', doc: 'serve the OpenAPI document and docs page at /swagger' },
  { key: 'server.response_headers', kind: 'map', default: {}, env: 'LLAMACTL_RESPONSE_HEADERS', doc: 'headers added to every response' },
  { key: 'server.idle_timeout', kind: 'int', default: 60, env: 'LLAMACTL_IDLE_TIMEOUT', min: 1, max: 255, doc: 'seconds a client may send nothing before its connection is closed (slow clients); never applied to a request already being served' },
  { key: 'server.max_open_files', kind: 'int', default: 0, env: 'LLAMACTL_MAX_OPEN_FILES', min: 0, doc: 'open file descriptors (client connections are most of them) past which llamactl closes its idle keep-alive connections, checked every second; requests being served are never cut. 0: 80 % of the open-files limit (Bun raises the soft RLIMIT_NOFILE to the hard one at start), at most 8192' },
  { key: 'server.max_body_size', kind: 'int', default: 1024 * 1024, env: 'LLAMACTL_MAX_BODY_SIZE', min: 1024, doc: 'largest management request body, bytes (413 above)' },
  { key: 'server.max_inference_body_size', kind: 'int', default: 512 * 1024 * 1024, env: 'LLAMACTL_MAX_INFERENCE_BODY_SIZE', min: 1024, doc: 'largest body forwarded to a backend, bytes (413 above)' },
  { key: 'server.max_buffered_body_size', kind: 'int', default: 512 * 1024 * 1024, env: 'LLAMACTL_MAX_BUFFERED_BODY_SIZE', min: 1024, doc: 'most bytes of /v1 request bodies held in memory at once, across all requests; a body that would go past it is refused with 503 and Retry-After (counted from Content-Length up front, chunked bodies as they arrive). At least max_inference_body_size' },

  { key: 'data_dir', kind: 'path', default: '', env: 'LLAMACTL_DATA_DIRECTORY', flag: '--data-dir', doc: 'folder for the database, logs and keys (default: the platform data folder, ~/.local/share/llamactl on Linux); relative to the working directory' },
  { key: 'database.path', kind: 'path', default: 'llamactl.db', env: 'LLAMACTL_DATABASE_PATH', under: 'data_dir', doc: 'SQLite file, relative to data_dir unless absolute' },
  { key: 'database.max_open_connections', kind: 'int', default: 25, env: 'LLAMACTL_DATABASE_MAX_OPEN_CONNECTIONS', min: 0, use: 'inert', why: 'llamactl holds one SQLite connection in its own process', doc: 'accepted for the original\'s configs; llamactl holds one SQLite connection' },
  { key: 'database.max_idle_connections', kind: 'int', default: 5, env: 'LLAMACTL_DATABASE_MAX_IDLE_CONNECTIONS', min: 0, use: 'inert', why: 'llamactl holds one SQLite connection in its own process', doc: 'accepted for the original\'s configs; llamactl holds one SQLite connection' },
  { key: 'database.connection_max_lifetime', kind: 'duration', default: 300, env: 'LLAMACTL_DATABASE_CONN_MAX_LIFETIME', min: 0, use: 'inert', why: 'llamactl holds one SQLite connection in its own process', doc: 'accepted for the original\'s configs; llamactl holds one SQLite connection' },

  ...backendSettings('llama-cpp'),
  { key: 'backends.llama-cpp.cache_dir', kind: 'path', default: '', env: 'LLAMACTL_LLAMACPP_CACHE_DIR', doc: 'where downloaded models are kept, in the Hugging Face hub layout (`models--org--name/blobs|snapshots|refs`) that llama.cpp\'s `-hf` reads; llama.cpp instances get it as `LLAMA_CACHE` (default: ~/.cache/llama.cpp on Linux, or $XDG_CACHE_HOME/llama.cpp); also `LLAMA_CACHE`. See docs/models.md' },
  { key: 'backends.llama-cpp.download_timeout', kind: 'duration', default: 3600, env: 'LLAMACTL_LLAMACPP_DOWNLOAD_TIMEOUT', min: 1, doc: 'longest a model download job may take, seconds; past it the job fails (what it fetched is kept and resumed by the next download)' },
  { key: 'backends.llama-cpp.hf_endpoint', kind: 'string', default: 'https://huggingface.co', env: 'LLAMACTL_HF_ENDPOINT', doc: 'the Hugging Face hub (or a mirror) models are downloaded from; also `HF_ENDPOINT`' },
  { key: 'backends.llama-cpp.hf_token', kind: 'string', default: '', env: 'LLAMACTL_HF_TOKEN', secret: true, doc: 'Hugging Face access token (`hf_…`) for private and gated repos, sent to the hub only (not to the file host it redirects to, not to backends); also `HF_TOKEN`' },
  { key: 'models_dirs', kind: 'list', default: [], env: 'LLAMACTL_MODELS_DIRS', doc: 'more folders whose GGUF files (searched 8 folders deep) the model library lists, besides the download cache' },
  ...backendSettings('mlx'),
  ...backendSettings('vllm'),

  { key: 'instances.port_range', kind: 'port_range', default: [8000, 9000], env: 'LLAMACTL_INSTANCE_PORT_RANGE', doc: 'ports given to instances that name none' },
  { key: 'instances.auto_create_dirs', kind: 'bool', default: true, env: 'LLAMACTL_AUTO_CREATE_DATA_DIR', doc: 'create data_dir and logs_dir when missing' },
  { key: 'instances.max_instances', kind: 'int', default: -1, env: 'LLAMACTL_MAX_INSTANCES', min: -1, doc: 'most instances that can be defined (-1: no limit)' },
  { key: 'instances.max_running_instances', kind: 'int', default: -1, env: 'LLAMACTL_MAX_RUNNING_INSTANCES', min: -1, doc: 'most instances running at once (-1: no limit)' },
  { key: 'instances.group_limits', kind: 'int_map', default: {}, env: 'LLAMACTL_GROUP_LIMITS', min: 0, doc: 'most running instances per group (`large: 1`; in the variable `large=1,small=3`): starting one more of a group at its limit stops that group\'s least recently used idle instance, then max_running_instances applies as well; a group not named here has no limit' },
  { key: 'instances.queue_fairness', kind: 'enum', values: ['fifo', 'per_key'], default: 'fifo', env: 'LLAMACTL_QUEUE_FAIRNESS', doc: 'the order an instance\'s queue is served in: fifo (first come, first served) or per_key (round-robin across inference keys, so one client\'s batch cannot starve another)' },
  { key: 'instances.enable_lru_eviction', kind: 'bool', default: true, env: 'LLAMACTL_ENABLE_LRU_EVICTION', doc: 'at max_running_instances, stop the least recently used idle instance instead of refusing' },
  { key: 'instances.default_auto_restart', kind: 'bool', default: true, env: 'LLAMACTL_DEFAULT_AUTO_RESTART', doc: 'auto_restart of new instances' },
  { key: 'instances.default_max_restarts', kind: 'int', default: 3, env: 'LLAMACTL_DEFAULT_MAX_RESTARTS', min: -1, doc: 'max_restarts of new instances (-1: no limit)' },
  { key: 'instances.default_restart_delay', kind: 'int', default: 5, env: 'LLAMACTL_DEFAULT_RESTART_DELAY', min: 0, doc: 'restart_delay of new instances, seconds' },
  { key: 'instances.default_on_demand_start', kind: 'bool', default: true, env: 'LLAMACTL_DEFAULT_ON_DEMAND_START', doc: 'on_demand_start of new instances' },
  { key: 'instances.default_idle_timeout', kind: 'int', default: 0, env: 'LLAMACTL_DEFAULT_IDLE_TIMEOUT', min: 0, doc: 'idle_timeout of new instances, minutes (0: never)' },
  { key: 'instances.on_demand_start_timeout', kind: 'int', default: 120, env: 'LLAMACTL_ON_DEMAND_START_TIMEOUT', min: 1, doc: 'how long a request waits for an on-demand start, seconds' },
  { key: 'instances.startup_timeout', kind: 'int', default: 600, env: 'LLAMACTL_STARTUP_TIMEOUT', min: 1, doc: 'how long a backend may take to become ready before its start fails, seconds' },
  { key: 'instances.start_wait', kind: 'int', default: 5, env: 'LLAMACTL_START_WAIT', min: 0, max: 600, doc: 'seconds a create, start, restart or update waits for the backend to be ready before answering with the status it has then (the start goes on); `?wait=ready` waits until it is ready' },
  { key: 'instances.stop_grace_period', kind: 'int', default: 10, env: 'LLAMACTL_STOP_GRACE_PERIOD', min: 0, doc: 'seconds between SIGTERM and SIGKILL when stopping a backend' },
  { key: 'instances.drain_timeout', kind: 'int', default: 30, env: 'LLAMACTL_DRAIN_TIMEOUT', min: 0, doc: 'seconds a stop waits for in-flight requests to finish' },
  { key: 'instances.health_check_interval', kind: 'duration', default: 5, env: 'LLAMACTL_HEALTH_CHECK_INTERVAL', min: 0, max: 3600, doc: 'how often a running backend\'s health endpoint is probed, seconds (0: never). A backend that fails 3 probes in a row (no answer within the interval, or a 5xx) while none of its requests is receiving bytes is taken as crashed: it is killed and its restart policy applies. Probes are not activity' },
  { key: 'instances.timeout_check_interval', kind: 'int', default: 0, env: 'LLAMACTL_TIMEOUT_CHECK_INTERVAL', min: 0, use: 'inert', why: 'idle stops are scheduled to the second, with no polling', doc: 'accepted for compatibility and unused: idle stops are scheduled to the second' },
  { key: 'instances.logs_dir', kind: 'path', default: 'logs', env: 'LLAMACTL_LOGS_DIR', under: 'data_dir', doc: 'instance log files, relative to data_dir unless absolute' },
  { key: 'instances.instances_dir', kind: 'path', default: 'instances', env: 'LLAMACTL_INSTANCES_DIR', under: 'data_dir', doc: 'per-instance working folders (a router instance\'s preset.ini, mode 0600), relative to data_dir unless absolute' },
  { key: 'instances.memory_limit', kind: 'int', default: 0, env: 'LLAMACTL_INSTANCE_MEMORY_LIMIT', min: 0, doc: 'most memory, MiB, the estimate of one llama_cpp instance may come to (RAM and GPU together) before its create or update is refused; 0: no cap of its own (the available RAM and GPU memory are checked either way)' },
  { key: 'instances.log_rotation_enabled', kind: 'bool', default: true, env: 'LLAMACTL_LOG_ROTATION_ENABLED', doc: 'rotate instance log files by size' },
  { key: 'instances.log_rotation_max_size', kind: 'int', default: 100, env: 'LLAMACTL_LOG_ROTATION_MAX_SIZE', min: 1, doc: 'size of an instance log file before rotation, MB' },
  { key: 'instances.log_rotation_max_files', kind: 'int', default: 3, env: 'LLAMACTL_LOG_ROTATION_MAX_FILES', min: 1, doc: 'rotated log files kept per instance' },
  { key: 'instances.log_rotation_compress', kind: 'bool', default: false, env: 'LLAMACTL_LOG_ROTATION_COMPRESS', doc: 'gzip rotated log files (`<name>.log.1.gz`), in the background' },
  { key: 'instances.log_tail_lines', kind: 'int', default: 10000, env: 'LLAMACTL_LOG_TAIL_LINES', min: 10, doc: 'log lines per instance kept in memory for the logs endpoint' },

  { key: 'metrics.enabled', kind: 'bool', default: true, env: 'LLAMACTL_METRICS_ENABLED', doc: 'serve Prometheus metrics at /metrics' },
  { key: 'metrics.public', kind: 'bool', default: false, env: 'LLAMACTL_METRICS_PUBLIC', doc: '/metrics without a key' },
  { key: 'metrics.key', kind: 'string', default: '', env: 'LLAMACTL_METRICS_KEY', secret: true, doc: 'a key that opens /metrics only (a management key always does)' },
  { key: 'log.format', kind: 'enum', values: ['text', 'json'], default: 'text', env: 'LLAMACTL_LOG_FORMAT', doc: 'llamactl\'s own log: text or json (one object a line, for log collectors)' },
  { key: 'log.level', kind: 'enum', values: ['debug', 'info', 'warn', 'error'], default: 'info', env: 'LLAMACTL_LOG_LEVEL', doc: 'debug, info, warn or error' },
  { key: 'log.requests', kind: 'bool', default: true, env: 'LLAMACTL_LOG_REQUESTS', doc: 'one line per request: method, path, instance, status, duration' },

  { key: 'auth.require_management_auth', kind: 'bool', default: true, env: 'LLAMACTL_REQUIRE_MANAGEMENT_AUTH', doc: 'require a management key for /api/v1' },
  { key: 'auth.management_keys', kind: 'list', default: [], env: 'LLAMACTL_MANAGEMENT_KEYS', secret: true, doc: 'management keys (comma-separated in the variable); an empty entry is no key' },
  { key: 'auth.require_inference_auth', kind: 'bool', default: true, env: 'LLAMACTL_REQUIRE_INFERENCE_AUTH', doc: 'require an inference key for /v1' },
  { key: 'auth.inference_keys', kind: 'list', default: [], env: 'LLAMACTL_INFERENCE_KEYS', secret: true, doc: 'inference keys (comma-separated in the variable); an empty entry is no key' },
  { key: 'auth.max_failures', kind: 'int', default: 10, env: 'LLAMACTL_AUTH_MAX_FAILURES', min: 0, doc: 'failed sign-ins and wrong Bearer keys allowed from one client address (IPv6: one /64) in `auth.failure_window`; past it, 429 with Retry-After (0: no limit; loopback is limited too)' },
  { key: 'auth.failure_window', kind: 'int', default: 300, env: 'LLAMACTL_AUTH_FAILURE_WINDOW', min: 1, max: 86400, doc: 'seconds in which `auth.max_failures` are counted, from an address\'s first failure' },
  { key: 'auth.failure_delay', kind: 'int', default: 1, env: 'LLAMACTL_AUTH_FAILURE_DELAY', min: 0, max: 60, doc: 'seconds a limited address waits for each 429; while 4 such answers are pending for it, its other attempts are refused unchecked' },

  { key: 'local_node', kind: 'string', default: 'main', env: 'LLAMACTL_LOCAL_NODE', doc: 'this llamactl\'s name among `nodes`' },
  { key: 'nodes', kind: 'nodes', default: {}, secret: true, doc: 'other llamactl servers by name: `address` (http(s) URL; empty for this one), `api_key` (a management key of that llamactl, sent only in the Authorization header, for management and /v1 alike) and optionally `ca_file` (a PEM bundle to trust for its https:// address); this one is added under `local_node`' },
  { key: 'nodes_ca_file', kind: 'path', default: '', env: 'LLAMACTL_NODES_CA_FILE', doc: 'PEM bundle trusted for every https:// node address that names no `ca_file` of its own (empty: the system\'s certificate authorities)' },
  { key: 'node_request_timeout', kind: 'duration', default: 30, env: 'LLAMACTL_NODE_REQUEST_TIMEOUT', min: 0.05, doc: 'longest a management call to a node may take before it is answered 502 naming the node, seconds (a start with `?wait=ready` gets instances.startup_timeout more). /v1 and proxied requests have no such bound: they end when the node is marked down' },
  { key: 'node_health_check_interval', kind: 'duration', default: 5, env: 'LLAMACTL_NODE_HEALTH_CHECK_INTERVAL', min: 0.05, max: 3600, doc: 'how often each node is asked for its instances (its health check), seconds; a node that does not answer within the interval is marked down, its instances `unknown`, and it is then asked again with a doubling interval, at most 60 s apart (sooner when a request needs it)' },
] as const satisfies readonly Setting[]

export const ALIASES: readonly Alias[] = [
  // The original's releases before backends had their own sections.
  { key: 'instances.llama_executable', env: 'LLAMACTL_LLAMA_EXECUTABLE', for: 'backends.llama-cpp.command', deprecated: true },
  { key: 'backends.llama_executable', for: 'backends.llama-cpp.command', deprecated: true },
  { key: 'backends.mlx_lm_executable', env: 'LLAMACTL_MLX_LM_EXECUTABLE', for: 'backends.mlx.command', deprecated: true },
  { key: 'backends.vllm_executable', env: 'LLAMACTL_VLLM_EXECUTABLE', for: 'backends.vllm.command', deprecated: true },
  // Its first release, and the years data_dir sat under instances.
  { key: 'instances.log_directory', env: 'LLAMACTL_LOG_DIR', for: 'instances.logs_dir', deprecated: true },
  { key: 'instances.data_dir', for: 'data_dir', deprecated: true },
  // Its documentation still names the instances folder by its old key.
  { key: 'instances.configs_dir', for: 'instances.instances_dir', deprecated: true },
  // Its model-management page writes the backend with an underscore.
  { key: 'backends.llama_cpp.cache_dir', for: 'backends.llama-cpp.cache_dir', deprecated: true },
  // llama.cpp's own variable for its cache; the LLAMACTL_ one wins when both are set.
  { env: 'LLAMA_CACHE', for: 'backends.llama-cpp.cache_dir', deprecated: false },
  // The Hugging Face clients' own variables.
  { env: 'HF_ENDPOINT', for: 'backends.llama-cpp.hf_endpoint', deprecated: false },
  { env: 'HF_TOKEN', for: 'backends.llama-cpp.hf_token', deprecated: false },
]

/** The table as plain rows; its precise type (ROWS) is what Config is derived from. */
export const SETTINGS: readonly Setting[] = ROWS

export type SettingRow = (typeof ROWS)[number]
export type SettingKey = SettingRow['key']

type ValueOf<S> = S extends { kind: 'enum'; values: readonly (infer V)[] } ? V : S extends { kind: infer K extends Kind } ? KindTypes[K] : never
type Nest<K extends string, V> = K extends `${infer H}.${infer R}` ? { [P in H]: Nest<R, V> } : { [P in K]: V }
type Merge<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never
type Flatten<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]: Flatten<T[K]> } : T

/** The loaded configuration: one property per row of SETTINGS, nested by the key's dots. */
type RowNest<R> = R extends { key: infer K extends string } ? Nest<K, ValueOf<R>> : never
export type Config = Flatten<Merge<RowNest<SettingRow>>>
export type BackendConfig = Config['backends'][BackendKey]

export const SETTINGS_BY_KEY: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((s) => [s.key, s]))
export const ALIAS_BY_KEY: ReadonlyMap<string, Alias> = new Map(ALIASES.flatMap((a) => (a.key ? [[a.key, a] as const] : [])))
