/**
 * Configs as the original llamactl's users have them, written from its documentation (every
 * section of its configuration page, its README, quick start, troubleshooting and model pages)
 * and from the cases of its config tests, each checked for meaning: the values llamactl ends up
 * with, not only that it starts. Only loadConfig's inputs and the Config it returns are used, so
 * the corpus runs against any version of the loader.
 */
import { describe, expect, test } from 'bun:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Config, loadConfig } from '../../src/config/load'
import { tempDir } from '../helpers'

interface Case {
  name: string
  /** config.yaml in the working directory (the original's second lookup name). */
  yaml?: string
  dotenv?: string
  env?: Record<string, string>
  check(c: Config, dirs: { home: string; cwd: string }): void
}

function run(k: Case) {
  const home = tempDir()
  const cwd = join(home, 'work')
  mkdirSync(cwd)
  if (k.yaml !== undefined) writeFileSync(join(cwd, 'config.yaml'), k.yaml)
  if (k.dotenv !== undefined) writeFileSync(join(cwd, '.env'), k.dotenv)
  const loaded = loadConfig({ env: k.env ?? {}, cwd, home })
  return { loaded, home, cwd }
}

const share = (home: string, ...p: string[]) => join(home, '.local', 'share', 'llamactl', ...p)

const CORPUS: Case[] = [
  {
    name: 'configuration page: the default configuration, as printed',
    yaml: `
server:
  host: "0.0.0.0"                # Server host to bind to
  port: 8080                     # Server port to bind to
  allowed_origins: ["*"]         # Allowed CORS origins (default: all)
  allowed_headers: ["*"]         # Allowed CORS headers (default: all)
  enable_swagger: false          # Enable Swagger UI for API docs

backends:
  llama-cpp:
    command: "llama-server"
    args: []
    environment: {}              # Environment variables for the backend process
    docker:
      enabled: false
      image: "ghcr.io/ggml-org/llama.cpp:server"
      args: ["run", "--rm", "--network", "host", "--gpus", "all"]
      environment: {}
    response_headers: {}         # Additional response headers to send with responses

  vllm:
    command: "vllm"
    args: ["serve"]
    environment: {}              # Environment variables for the backend process
    docker:
      enabled: false
      image: "vllm/vllm-openai:latest"
      args: ["run", "--rm", "--network", "host", "--gpus", "all", "--shm-size", "1g"]
      environment: {}
    response_headers: {}         # Additional response headers to send with responses

  mlx:
    command: "mlx_lm.server"
    args: []
    environment: {}              # Environment variables for the backend process
    response_headers: {}         # Additional response headers to send with responses

data_dir: ~/.local/share/llamactl  # Main data directory (database, instances, logs), default varies by OS

instances:
  port_range: [8000, 9000]         # Port range for instances
  configs_dir: data_dir/instances  # Instance configs directory
  logs_dir: data_dir/logs          # Logs directory
  auto_create_dirs: true           # Auto-create data/config/logs dirs if missing
  max_instances: -1                # Max instances (-1 = unlimited)
  max_running_instances: -1        # Max running instances (-1 = unlimited)
  enable_lru_eviction: true        # Enable LRU eviction for idle instances
  default_idle_timeout: 30         # Default idle timeout in minutes (0 = no timeout)
  default_auto_restart: true       # Auto-restart new instances by default
  default_max_restarts: 3          # Max restarts for new instances
  default_restart_delay: 5         # Restart delay (seconds) for new instances
  default_on_demand_start: true    # Default on-demand start setting
  on_demand_start_timeout: 120     # Default on-demand start timeout in seconds
  timeout_check_interval: 5        # Idle instance timeout check in minutes
  group_limits: {}                 # Per-group running instance limits (e.g., {large: 1, small: 3})

database:
  path: data_dir/llamactl.db              # Database file path
  max_open_connections: 25       # Maximum open database connections
  max_idle_connections: 5        # Maximum idle database connections
  connection_max_lifetime: 5m    # Connection max lifetime

auth:
  require_inference_auth: true   # Require auth for inference endpoints
  require_management_auth: true  # Require auth for management endpoints
  management_keys: []            # Keys for management endpoints

local_node: "main"               # Name of the local node (default: "main")
nodes:                           # Node configuration for multi-node deployment
  main:                          # Default local node (empty config)
`,
    check(c, { home }) {
      expect(c.server.host).toBe('0.0.0.0')
      expect(c.server.allowed_origins).toEqual(['*'])
      expect(c.server.allowed_headers).toEqual(['*'])
      expect(c.data_dir).toBe(share(home))
      expect(c.instances.logs_dir).toBe(share(home, 'logs'))
      expect(c.instances.instances_dir).toBe(share(home, 'instances'))
      expect(c.database.path).toBe(share(home, 'llamactl.db'))
      expect(c.database.max_open_connections).toBe(25)
      expect(c.database.connection_max_lifetime).toBe(300)
      // `vllm serve MODEL`, not `vllm serve serve MODEL`: serve is the subcommand llamactl adds.
      expect(c.backends.vllm.args).toEqual([])
      expect(c.backends.vllm.docker.image).toBe('vllm/vllm-openai:latest')
      expect(c.backends.vllm.docker.args).toEqual(['run', '--rm', '--network', 'host', '--gpus', 'all', '--shm-size', '1g'])
      expect(c.instances.default_idle_timeout).toBe(30)
      expect(c.instances.timeout_check_interval).toBe(5)
      expect(c.instances.group_limits).toEqual({})
      expect(c.local_node).toBe('main')
      expect(c.nodes).toEqual({ main: { address: '', api_key: '' } })
      expect(c.auth.management_keys).toEqual([])
    },
  },
  {
    name: 'configuration page: server',
    yaml: `
server:
  host: "0.0.0.0"         # Server host to bind to (default: "0.0.0.0")
  port: 8080              # Server port to bind to (default: 8080)
  allowed_origins: ["*"]  # CORS allowed origins (default: ["*"])
  allowed_headers: ["*"]  # CORS allowed headers (default: ["*"])
  enable_swagger: false   # Enable Swagger UI (default: false)
`,
    check(c) {
      expect(c.server).toMatchObject({ host: '0.0.0.0', port: 8080, allowed_origins: ['*'], allowed_headers: ['*'], enable_swagger: false })
    },
  },
  {
    name: 'configuration page: server, from its variables',
    env: { LLAMACTL_HOST: '0.0.0.0', LLAMACTL_PORT: '9000', LLAMACTL_ALLOWED_ORIGINS: 'http://a.example,http://b.example', LLAMACTL_ENABLE_SWAGGER: 'true' },
    check(c) {
      expect(c.server).toMatchObject({ host: '0.0.0.0', port: 9000, allowed_origins: ['http://a.example', 'http://b.example'], enable_swagger: true })
    },
  },
  {
    name: 'configuration page: backends',
    yaml: `
backends:
  llama-cpp:
    command: "llama-server"
    args: []
    environment: {}              # Environment variables for the backend process
    docker:
      enabled: false             # Enable Docker runtime (default: false)
      image: "ghcr.io/ggml-org/llama.cpp:server"
      args: ["run", "--rm", "--network", "host", "--gpus", "all"]
      environment: {}
    response_headers: {}         # Additional response headers to send with responses

  vllm:
    command: "vllm"
    args: ["serve"]
    environment: {}              # Environment variables for the backend process
    docker:
      enabled: false             # Enable Docker runtime (default: false)
      image: "vllm/vllm-openai:latest"
      args: ["run", "--rm", "--network", "host", "--gpus", "all", "--shm-size", "1g"]
      environment: {}
    response_headers: {}         # Additional response headers to send with responses

  mlx:
    command: "mlx_lm.server"
    args: []
    environment: {}              # Environment variables for the backend process
    # MLX does not support Docker
    response_headers: {}         # Additional response headers to send with responses
`,
    check(c) {
      expect(c.backends['llama-cpp'].command).toBe('llama-server')
      expect(c.backends['llama-cpp'].docker.image).toBe('ghcr.io/ggml-org/llama.cpp:server')
      expect(c.backends['llama-cpp'].docker.args).toEqual(['run', '--rm', '--network', 'host', '--gpus', 'all'])
      expect(c.backends.vllm.command).toBe('vllm')
      expect(c.backends.vllm.args).toEqual([])
      expect(c.backends.mlx.command).toBe('mlx_lm.server')
    },
  },
  {
    name: 'configuration page: backends, from their variables (NGINX header included)',
    env: {
      LLAMACTL_LLAMACPP_COMMAND: '/opt/llama/llama-server',
      LLAMACTL_LLAMACPP_ARGS: '--threads 8',
      LLAMACTL_LLAMACPP_ENV: 'CUDA_VISIBLE_DEVICES=0,GGML_CUDA_NO_PINNED=1',
      LLAMACTL_LLAMACPP_RESPONSE_HEADERS: 'X-Accel-Buffering=no;X-Served-By=llamactl',
      LLAMACTL_VLLM_ARGS: 'serve --disable-log-stats',
      LLAMACTL_VLLM_DOCKER_ENABLED: 'true',
      LLAMACTL_VLLM_DOCKER_IMAGE: 'vllm/vllm-openai:latest',
      LLAMACTL_VLLM_DOCKER_ARGS: 'run --rm --network host --gpus all --shm-size 1g',
      LLAMACTL_MLX_COMMAND: 'mlx_lm.server',
      LLAMACTL_MLX_RESPONSE_HEADERS: 'X-Accel-Buffering=no',
    },
    check(c) {
      const l = c.backends['llama-cpp']
      expect(l.command).toBe('/opt/llama/llama-server')
      expect(l.args).toEqual(['--threads', '8'])
      expect(l.environment).toEqual({ CUDA_VISIBLE_DEVICES: '0', GGML_CUDA_NO_PINNED: '1' })
      expect(l.response_headers).toEqual({ 'X-Accel-Buffering': 'no', 'X-Served-By': 'llamactl' })
      expect(c.backends.vllm.args).toEqual(['--disable-log-stats'])
      expect(c.backends.vllm.docker.enabled).toBe(true)
      expect(c.backends.vllm.docker.args).toEqual(['run', '--rm', '--network', 'host', '--gpus', 'all', '--shm-size', '1g'])
      expect(c.backends.mlx.response_headers).toEqual({ 'X-Accel-Buffering': 'no' })
    },
  },
  {
    name: 'configuration page: data directory',
    yaml: 'data_dir: "~/.local/share/llamactl"  # Main data directory for database, instances, and logs (default varies by OS)\n',
    check(c, { home }) {
      expect(c.data_dir).toBe(share(home))
      expect(c.database.path).toBe(share(home, 'llamactl.db'))
      expect(c.instances.logs_dir).toBe(share(home, 'logs'))
    },
  },
  {
    name: 'configuration page: data directory, from LLAMACTL_DATA_DIRECTORY',
    env: { LLAMACTL_DATA_DIRECTORY: '/srv/llamactl' },
    check(c) {
      expect(c.data_dir).toBe('/srv/llamactl')
      expect(c.database.path).toBe('/srv/llamactl/llamactl.db')
      expect(c.instances.logs_dir).toBe('/srv/llamactl/logs')
      expect(c.instances.instances_dir).toBe('/srv/llamactl/instances')
    },
  },
  {
    name: 'configuration page: instances',
    yaml: `
instances:
  port_range: [8000, 9000]      # Port range for instances (default: [8000, 9000])
  configs_dir: "instances"      # Directory for instance configs, default: data_dir/instances
  logs_dir: "logs"              # Directory for instance logs, default: data_dir/logs
  auto_create_dirs: true        # Automatically create data/config/logs directories (default: true)
  max_instances: -1             # Maximum instances (-1 = unlimited)
  max_running_instances: -1     # Maximum running instances (-1 = unlimited)
  enable_lru_eviction: true        # Enable LRU eviction for idle instances
  default_idle_timeout: 30         # Default idle timeout in minutes (0 = no timeout)
  default_auto_restart: true       # Default auto-restart setting
  default_max_restarts: 3          # Default maximum restart attempts
  default_restart_delay: 5         # Default restart delay in seconds
  default_on_demand_start: true    # Default on-demand start setting
  on_demand_start_timeout: 120     # Default on-demand start timeout in seconds
  timeout_check_interval: 5        # Default instance timeout check interval in minutes
  group_limits: {}                 # Per-group running instance limits (e.g., {large: 1, small: 3})
  log_rotation_enabled: true    # Enable log rotation (default: true)
  log_rotation_max_size: 100    # Max log file size in MB before rotation (default: 100)
  log_rotation_compress: false  # Compress rotated log files (default: false)
`,
    check(c, { home }) {
      const i = c.instances
      expect(i.port_range).toEqual([8000, 9000])
      expect(i.instances_dir).toBe(share(home, 'instances'))
      expect(i.logs_dir).toBe(share(home, 'logs'))
      expect(i).toMatchObject({ max_instances: -1, max_running_instances: -1, enable_lru_eviction: true, default_idle_timeout: 30, default_max_restarts: 3, default_restart_delay: 5, on_demand_start_timeout: 120 })
      expect(i).toMatchObject({ log_rotation_enabled: true, log_rotation_max_size: 100, log_rotation_compress: false })
    },
  },
  {
    name: 'configuration page: instances, from their variables',
    env: {
      LLAMACTL_INSTANCE_PORT_RANGE: '8000,9000',
      LLAMACTL_INSTANCES_DIR: '/srv/inst',
      LLAMACTL_LOGS_DIR: '/var/log/llamactl',
      LLAMACTL_AUTO_CREATE_DATA_DIR: 'false',
      LLAMACTL_MAX_INSTANCES: '10',
      LLAMACTL_MAX_RUNNING_INSTANCES: '2',
      LLAMACTL_ENABLE_LRU_EVICTION: 'false',
      LLAMACTL_DEFAULT_IDLE_TIMEOUT: '15',
      LLAMACTL_DEFAULT_ON_DEMAND_START: 'false',
      LLAMACTL_ON_DEMAND_START_TIMEOUT: '300',
      LLAMACTL_TIMEOUT_CHECK_INTERVAL: '1',
      LLAMACTL_GROUP_LIMITS: 'group1=2,group2=1',
      LLAMACTL_LOG_ROTATION_ENABLED: 'false',
      LLAMACTL_LOG_ROTATION_MAX_SIZE: '50',
      LLAMACTL_LOG_ROTATION_COMPRESS: 'true',
    },
    check(c) {
      const i = c.instances
      expect(i.port_range).toEqual([8000, 9000])
      expect(i.instances_dir).toBe('/srv/inst')
      expect(i.logs_dir).toBe('/var/log/llamactl')
      expect(i).toMatchObject({ auto_create_dirs: false, max_instances: 10, max_running_instances: 2, enable_lru_eviction: false, default_idle_timeout: 15, default_on_demand_start: false, on_demand_start_timeout: 300, timeout_check_interval: 1 })
      expect(i.group_limits).toEqual({ group1: 2, group2: 1 })
      expect(i).toMatchObject({ log_rotation_enabled: false, log_rotation_max_size: 50, log_rotation_compress: true })
    },
  },
  {
    name: 'configuration page: database',
    yaml: `
database:
  path: "llamactl.db"              # Database file path, default: data_dir/llamactl.db
  max_open_connections: 25         # Maximum open database connections (default: 25)
  max_idle_connections: 5          # Maximum idle database connections (default: 5)
  connection_max_lifetime: 5m      # Connection max lifetime (default: 5m)
`,
    check(c, { home }) {
      expect(c.database).toEqual({ path: share(home, 'llamactl.db'), max_open_connections: 25, max_idle_connections: 5, connection_max_lifetime: 300 })
    },
  },
  {
    name: 'configuration page: database, from its variables',
    env: { LLAMACTL_DATABASE_PATH: '/srv/db/llamactl.db', LLAMACTL_DATABASE_MAX_OPEN_CONNECTIONS: '10', LLAMACTL_DATABASE_MAX_IDLE_CONNECTIONS: '2', LLAMACTL_DATABASE_CONN_MAX_LIFETIME: '1h' },
    check(c) {
      expect(c.database).toEqual({ path: '/srv/db/llamactl.db', max_open_connections: 10, max_idle_connections: 2, connection_max_lifetime: 3600 })
    },
  },
  {
    name: 'configuration page: authentication',
    yaml: `
auth:
  require_inference_auth: true           # Require API key for OpenAI endpoints (default: true)
  require_management_auth: true          # Require API key for management endpoints (default: true)
  management_keys: []                    # List of valid management API keys
`,
    check(c) {
      expect(c.auth).toMatchObject({ require_inference_auth: true, require_management_auth: true, management_keys: [] })
    },
  },
  {
    name: 'configuration page: authentication, from its variables',
    env: { LLAMACTL_REQUIRE_INFERENCE_AUTH: 'false', LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mk-one,mk-two' },
    check(c) {
      expect(c.auth).toMatchObject({ require_inference_auth: false, require_management_auth: true, management_keys: ['mk-one', 'mk-two'] })
    },
  },
  {
    name: 'configuration page: remote nodes',
    yaml: `
local_node: "main"               # Name of the local node (default: "main")
nodes:                           # Node configuration map
  main:                          # Local node (empty address means local)
    address: ""                  # Not used for local node
    api_key: ""                  # Not used for local node
  worker1:                       # Remote worker node
    address: "http://192.168.1.10:8080"
    api_key: "worker1-api-key"   # Management API key for authentication
`,
    check(c) {
      expect(c.local_node).toBe('main')
      expect(c.nodes).toEqual({ main: { address: '', api_key: '' }, worker1: { address: 'http://192.168.1.10:8080', api_key: 'worker1-api-key' } })
    },
  },
  {
    name: 'configuration page: ${VAR} and ${VAR:-default}',
    yaml: `
auth:
  management_keys:
    - \${OPENAI_API_KEY}

backends:
  llama-cpp:
    environment:
      CUDA_VISIBLE_DEVICES: \${CUDA_DEVICE:-0}
`,
    env: { OPENAI_API_KEY: 'sk-proj-abc123' },
    check(c) {
      expect(c.auth.management_keys).toEqual(['sk-proj-abc123'])
      expect(c.backends['llama-cpp'].environment).toEqual({ CUDA_VISIBLE_DEVICES: '0' })
    },
  },
  {
    name: 'configuration page: the same, its variables from .env',
    yaml: `
auth:
  management_keys:
    - \${OPENAI_API_KEY}

backends:
  llama-cpp:
    environment:
      CUDA_VISIBLE_DEVICES: \${CUDA_DEVICE:-0}
`,
    dotenv: 'OPENAI_API_KEY=sk-proj-abc123...\nCUDA_DEVICE=1\n',
    check(c) {
      expect(c.auth.management_keys).toEqual(['sk-proj-abc123...'])
      expect(c.backends['llama-cpp'].environment).toEqual({ CUDA_VISIBLE_DEVICES: '1' })
    },
  },
  {
    name: 'troubleshooting: host, port and port range',
    yaml: 'server:\n  host: "0.0.0.0"\n  port: 8080\ninstances:\n  port_range: [8000, 9000]\n',
    check(c) {
      expect([c.server.host, c.server.port, c.instances.port_range]).toEqual(['0.0.0.0', 8080, [8000, 9000]])
    },
  },
  {
    name: 'troubleshooting: CORS origins',
    yaml: 'server:\n  allowed_origins:\n    - "http://localhost:3000"\n    - "https://yourdomain.com"\n',
    check(c) {
      expect(c.server.allowed_origins).toEqual(['http://localhost:3000', 'https://yourdomain.com'])
    },
  },
  {
    name: 'troubleshooting: authentication off',
    yaml: 'auth:\n  require_management_auth: false\n  require_inference_auth: false\n',
    check(c) {
      expect([c.auth.require_management_auth, c.auth.require_inference_auth]).toEqual([false, false])
    },
  },
  {
    name: 'troubleshooting: a management key',
    yaml: 'auth:\n  management_keys:\n    - "your-management-key"\n',
    check(c) {
      expect(c.auth.management_keys).toEqual(['your-management-key'])
    },
  },
  {
    name: 'troubleshooting: nodes',
    yaml: `
local_node: "main"  # Must match a key in nodes map
nodes:
  main:
    address: ""     # Empty for local node
  worker1:
    address: "http://worker1.internal:8080"
    api_key: "secure-key"  # Must match worker1's management key
`,
    check(c) {
      expect(c.nodes.worker1).toEqual({ address: 'http://worker1.internal:8080', api_key: 'secure-key' })
      expect(c.nodes.main).toEqual({ address: '', api_key: '' })
    },
  },
  {
    name: 'quick start: vLLM in Docker',
    yaml: `
backends:
  vllm:
    command: "vllm"
    args: ["serve"]
    docker:
      enabled: true
      image: "vllm/vllm-openai:latest"
      args: ["run", "--rm", "--network", "host", "--gpus", "all", "--shm-size", "1g"]
`,
    check(c) {
      expect(c.backends.vllm.docker).toMatchObject({ enabled: true, image: 'vllm/vllm-openai:latest', args: ['run', '--rm', '--network', 'host', '--gpus', 'all', '--shm-size', '1g'] })
      expect(c.backends.vllm.args).toEqual([])
    },
  },
  {
    name: 'managing instances: group limits',
    yaml: `
instances:
  max_running_instances: 4
  group_limits:
    large: 1    # Only 1 "large" instance running at a time
    small: 3    # Up to 3 "small" instances running at a time
`,
    check(c) {
      expect(c.instances.max_running_instances).toBe(4)
      expect(c.instances.group_limits).toEqual({ large: 1, small: 3 })
    },
  },
  {
    name: 'managing models: the cache folder, as that page spells the backend',
    yaml: 'backends:\n  llama_cpp:\n    cache_dir: ~/models\n',
    check(c, { home }) {
      expect(c.backends['llama-cpp'].cache_dir).toBe(join(home, 'models'))
    },
  },
  {
    name: 'managing models: the cache folder from LLAMA_CACHE, and its default',
    env: { LLAMA_CACHE: '/srv/llama-cache' },
    check(c) {
      expect(c.backends['llama-cpp'].cache_dir).toBe('/srv/llama-cache')
      expect(c.backends['llama-cpp'].download_timeout).toBe(3600)
    },
  },
  {
    name: 'README: Docker for both backends',
    yaml: 'backends:\n  llama-cpp:\n    docker:\n      enabled: true\n  vllm:\n    docker:\n      enabled: true\n',
    check(c) {
      expect([c.backends['llama-cpp'].docker.enabled, c.backends.vllm.docker.enabled]).toEqual([true, true])
    },
  },
  {
    name: 'README: the full configuration block',
    yaml: `
server:
  host: "0.0.0.0"
  port: 8080
  allowed_origins: ["*"]
  allowed_headers: ["*"]
  enable_swagger: false
backends:
  llama-cpp:
    command: "llama-server"
    args: []
    environment: {}
    docker:
      enabled: false
      image: "ghcr.io/ggml-org/llama.cpp:server"
      args: ["run", "--rm", "--network", "host", "--gpus", "all", "-v", "~/.local/share/llamactl/llama.cpp:/root/.cache/llama.cpp"]
      environment: {}
  vllm:
    command: "vllm"
    args: ["serve"]
    environment: {}
    docker:
      enabled: false
      image: "vllm/vllm-openai:latest"
      args: ["run", "--rm", "--network", "host", "--gpus", "all", "--shm-size", "1g", "-v", "~/.local/share/llamactl/huggingface:/root/.cache/huggingface"]
      environment: {}
  mlx:
    command: "mlx_lm.server"
    args: []
    environment: {}
data_dir: ~/.local/share/llamactl
instances:
  port_range: [8000, 9000]
  logs_dir: ~/.local/share/llamactl/logs
  auto_create_dirs: true
  max_instances: -1
  max_running_instances: -1
  enable_lru_eviction: true
  default_idle_timeout: 30
  default_auto_restart: true
  default_max_restarts: 3
  default_restart_delay: 5
  default_on_demand_start: true
  on_demand_start_timeout: 120
  group_limits: {}
  timeout_check_interval: 5
  log_rotation_enabled: true
  log_rotation_max_size: 100
  log_rotation_compress: false
database:
  path: ~/.local/share/llamactl/llamactl.db
  max_open_connections: 25
  max_idle_connections: 5
  connection_max_lifetime: 5m
auth:
  require_inference_auth: true
  require_management_auth: true
  management_keys: []
`,
    check(c, { home }) {
      expect(c.data_dir).toBe(share(home))
      expect(c.instances.logs_dir).toBe(share(home, 'logs'))
      expect(c.database.path).toBe(share(home, 'llamactl.db'))
      // Arguments are passed to docker as written; only path settings expand ~.
      expect(c.backends['llama-cpp'].docker.args.at(-1)).toBe('~/.local/share/llamactl/llama.cpp:/root/.cache/llama.cpp')
      expect(c.backends.vllm.args).toEqual([])
    },
  },
  // The original's config tests, in meaning.
  {
    name: 'config test: a file with the old llama_executable',
    yaml: `
server:
  host: "localhost"
  port: 9090
instances:
  port_range: [7000, 8000]
  max_instances: 5
  logs_dir: "/custom/logs"
  llama_executable: "/usr/bin/llama-server"
  default_auto_restart: false
  default_max_restarts: 10
  default_restart_delay: 30
`,
    check(c) {
      expect([c.server.host, c.server.port]).toEqual(['localhost', 9090])
      expect(c.instances).toMatchObject({ port_range: [7000, 8000], max_instances: 5, logs_dir: '/custom/logs', default_auto_restart: false, default_max_restarts: 10, default_restart_delay: 30 })
      expect(c.backends['llama-cpp'].command).toBe('/usr/bin/llama-server')
    },
  },
  {
    name: 'config test: environment overrides',
    env: {
      LLAMACTL_HOST: '0.0.0.0',
      LLAMACTL_PORT: '3000',
      LLAMACTL_INSTANCE_PORT_RANGE: '5000-6000',
      LLAMACTL_LOGS_DIR: '/env/logs',
      LLAMACTL_MAX_INSTANCES: '20',
      LLAMACTL_DEFAULT_IDLE_TIMEOUT: '60',
      LLAMACTL_DEFAULT_AUTO_RESTART: 'false',
      LLAMACTL_DEFAULT_MAX_RESTARTS: '7',
      LLAMACTL_DEFAULT_RESTART_DELAY: '15',
    },
    check(c) {
      expect([c.server.host, c.server.port]).toEqual(['0.0.0.0', 3000])
      expect(c.instances).toMatchObject({ port_range: [5000, 6000], logs_dir: '/env/logs', max_instances: 20, default_idle_timeout: 60, default_auto_restart: false, default_max_restarts: 7, default_restart_delay: 15 })
      expect(c.backends['llama-cpp'].command).toBe('llama-server')
    },
  },
  {
    name: 'config test: the environment over the file, the file over defaults',
    yaml: 'server:\n  host: "file-host"\n  port: 8888\ninstances:\n  max_instances: 5\n',
    env: { LLAMACTL_HOST: 'env-host', LLAMACTL_MAX_INSTANCES: '15' },
    check(c) {
      expect([c.server.host, c.server.port, c.instances.max_instances]).toEqual(['env-host', 8888, 15])
    },
  },
  {
    name: 'config test: backend variables',
    env: {
      LLAMACTL_LLAMACPP_COMMAND: 'env-llama',
      LLAMACTL_LLAMACPP_ARGS: '--verbose --threads 4',
      LLAMACTL_LLAMACPP_DOCKER_ENABLED: 'true',
      LLAMACTL_LLAMACPP_DOCKER_IMAGE: 'env-llama:latest',
      LLAMACTL_LLAMACPP_DOCKER_ARGS: 'run --rm --network host --gpus all',
      LLAMACTL_LLAMACPP_DOCKER_ENV: 'CUDA_VISIBLE_DEVICES=0,OMP_NUM_THREADS=4',
      LLAMACTL_VLLM_COMMAND: 'env-vllm',
      LLAMACTL_VLLM_DOCKER_ENABLED: 'false',
      LLAMACTL_VLLM_DOCKER_IMAGE: 'env-vllm:latest',
      LLAMACTL_VLLM_DOCKER_ENV: 'PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:512,CUDA_VISIBLE_DEVICES=1',
      LLAMACTL_MLX_COMMAND: 'env-mlx',
    },
    check(c) {
      const l = c.backends['llama-cpp']
      expect([l.command, l.args, l.docker.enabled, l.docker.image]).toEqual(['env-llama', ['--verbose', '--threads', '4'], true, 'env-llama:latest'])
      expect(l.docker.args).toEqual(['run', '--rm', '--network', 'host', '--gpus', 'all'])
      expect(l.docker.environment).toEqual({ CUDA_VISIBLE_DEVICES: '0', OMP_NUM_THREADS: '4' })
      expect([c.backends.vllm.command, c.backends.vllm.docker.enabled]).toEqual(['env-vllm', false])
      expect(c.backends.vllm.docker.environment).toEqual({ PYTORCH_CUDA_ALLOC_CONF: 'max_split_size_mb:512', CUDA_VISIBLE_DEVICES: '1' })
      expect(c.backends.mlx.command).toBe('env-mlx')
    },
  },
  {
    name: 'config test: this node named worker1 in the file',
    yaml: 'local_node: "worker1"\nnodes:\n  worker1:\n    address: ""\n  worker2:\n    address: "http://192.168.1.10:8080"\n    api_key: "test-key"\n',
    check(c) {
      expect(c.local_node).toBe('worker1')
      // No "main" is added when local_node names another node.
      expect(c.nodes).toEqual({ worker1: { address: '', api_key: '' }, worker2: { address: 'http://192.168.1.10:8080', api_key: 'test-key' } })
    },
  },
  {
    name: 'config test: this node named primary',
    yaml: 'local_node: "primary"\nnodes:\n  primary:\n    address: ""\n  worker1:\n    address: "http://192.168.1.10:8080"\n',
    check(c) {
      expect(c.local_node).toBe('primary')
      expect(Object.keys(c.nodes).sort()).toEqual(['primary', 'worker1'])
      expect(c.nodes.worker1!.api_key).toBe('')
    },
  },
  {
    name: 'config test: this node named by LLAMACTL_LOCAL_NODE',
    env: { LLAMACTL_LOCAL_NODE: 'custom-node' },
    check(c) {
      expect(c.local_node).toBe('custom-node')
    },
  },
  {
    name: 'config test: .env and expansion together',
    dotenv: 'TEST_API_KEY=sk-proj-abc123\nTEST_CUDA_DEVICE=2\n',
    yaml: `
server:
  port: \${TEST_PORT:-9090}
auth:
  management_keys:
    - \${TEST_API_KEY}
backends:
  llama-cpp:
    environment:
      CUDA_VISIBLE_DEVICES: \${TEST_CUDA_DEVICE:-0}
      HF_TOKEN: \${TEST_HF_TOKEN}
`,
    check(c) {
      expect(c.server.port).toBe(9090)
      expect(c.auth.management_keys).toEqual(['sk-proj-abc123'])
      expect(c.backends['llama-cpp'].environment).toEqual({ CUDA_VISIBLE_DEVICES: '2', HF_TOKEN: '${TEST_HF_TOKEN}' })
    },
  },
  {
    name: 'config test: the process environment over .env',
    dotenv: 'TEST_PREC_KEY=from-dotenv\n',
    yaml: 'server:\n  host: ${TEST_PREC_KEY}\n',
    env: { TEST_PREC_KEY: 'from-process-env' },
    check(c) {
      expect(c.server.host).toBe('from-process-env')
    },
  },
  // Spellings of the original's older releases.
  {
    name: 'first releases: log_directory and llama_executable under instances',
    yaml: 'server:\n  port: 8080\ninstances:\n  port_range: [8000, 9000]\n  log_directory: /tmp/llamactl-logs\n  max_instances: 4\n  llama_executable: /opt/llama-server\n',
    check(c) {
      expect(c.instances.logs_dir).toBe('/tmp/llamactl-logs')
      expect(c.backends['llama-cpp'].command).toBe('/opt/llama-server')
      expect(c.instances.max_instances).toBe(4)
    },
  },
  {
    name: 'later releases: data_dir and configs_dir under instances, executables under backends, config inference keys',
    yaml: 'instances:\n  data_dir: ~/llamactl-data\n  configs_dir: /srv/instances\nbackends:\n  llama_executable: /opt/llama-server\n  mlx_lm_executable: /opt/mlx_lm.server\n  vllm_executable: /opt/vllm\nauth:\n  inference_keys: [ik-1]\n',
    check(c, { home }) {
      expect(c.data_dir).toBe(join(home, 'llamactl-data'))
      expect(c.instances.instances_dir).toBe('/srv/instances')
      expect(c.backends['llama-cpp'].command).toBe('/opt/llama-server')
      expect(c.backends.mlx.command).toBe('/opt/mlx_lm.server')
      expect(c.backends.vllm.command).toBe('/opt/vllm')
      expect(c.auth.inference_keys).toEqual(['ik-1'])
    },
  },
  {
    name: 'older variables: LLAMACTL_LLAMA_EXECUTABLE, LLAMACTL_MLX_LM_EXECUTABLE, LLAMACTL_VLLM_EXECUTABLE, LLAMACTL_LOG_DIR',
    env: { LLAMACTL_LLAMA_EXECUTABLE: '/a/llama-server', LLAMACTL_MLX_LM_EXECUTABLE: '/a/mlx', LLAMACTL_VLLM_EXECUTABLE: '/a/vllm', LLAMACTL_LOG_DIR: '/a/logs' },
    check(c) {
      expect([c.backends['llama-cpp'].command, c.backends.mlx.command, c.backends.vllm.command, c.instances.logs_dir]).toEqual(['/a/llama-server', '/a/mlx', '/a/vllm', '/a/logs'])
    },
  },
]

describe(`the original llamactl's configs load with the same meaning (${CORPUS.length})`, () => {
  for (const k of CORPUS) {
    test(k.name, () => {
      const { loaded, home, cwd } = run(k)
      k.check(loaded.config, { home, cwd })
    })
  }
})
