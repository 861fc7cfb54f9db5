import { describe, expect, test } from 'bun:test'
import { loadConfig } from '../../src/config/load'
import { launchPlan } from '../../src/instances/launch'
import { withDefaults } from '../../src/instances/options'

function setup(env: Record<string, string>) {
  const { config } = loadConfig({ env, cwd: '/nonexistent', home: '/nonexistent' })
  return config
}
const where = { host: '127.0.0.1', port: 8001 }

describe('launch plan', () => {
  test('native: command, configured args, subcommand, options; environment layered', () => {
    const config = setup({ LLAMACTL_VLLM_COMMAND: '/venv/bin/vllm', LLAMACTL_VLLM_ARGS: '--x', LLAMACTL_VLLM_ENV: 'A=backend,B=backend' })
    const options = withDefaults({ backend_type: 'vllm', backend_options: { model: 'org/m' }, environment: { B: 'instance' } }, config)
    const plan = launchPlan('v', options, config.backends.vllm, where, { A: 'base', PATH: '/bin' })
    expect(plan.argv).toEqual(['/venv/bin/vllm', '--x', 'serve', 'org/m', '--host', '127.0.0.1', '--port', '8001'])
    expect(plan.env).toEqual({ A: 'backend', B: 'instance', PATH: '/bin' })
    expect(plan.container).toBeNull()
  })

  test('command_override replaces only the executable', () => {
    const config = setup({ LLAMACTL_LLAMACPP_ARGS: '--log-disable' })
    const options = withDefaults({ backend_options: { model: 'm' }, command_override: '/opt/cuda/llama-server' }, config)
    expect(launchPlan('l', options, config.backends['llama-cpp'], where, {}).argv).toEqual([
      '/opt/cuda/llama-server', '--log-disable', '--model', 'm', '--host', '127.0.0.1', '--port', '8001',
    ])
  })

  test('Docker: a leading "run" in the configured args is tolerated, a configured network kept, no subcommand', () => {
    const config = setup({
      LLAMACTL_VLLM_DOCKER_ENABLED: 'true',
      LLAMACTL_VLLM_DOCKER_IMAGE: 'vllm/vllm-openai:latest',
      LLAMACTL_VLLM_DOCKER_ARGS: 'run --network=llm -p 8001:8001 --gpus all',
      LLAMACTL_VLLM_DOCKER_ENV: 'HF_HOME=/hf',
    })
    const options = withDefaults({ backend_type: 'vllm', backend_options: { model: 'org/m' }, environment: { TOKEN: 's3cret' } }, config)
    const plan = launchPlan('v', options, config.backends.vllm, where, { PATH: '/bin' })
    expect(plan.argv).toEqual([
      'docker', 'run', '--rm', '--name', 'llamactl-v', '--network=llm', '-p', '8001:8001', '--gpus', 'all',
      '-e', 'HF_HOME', '-e', 'TOKEN', 'vllm/vllm-openai:latest', 'org/m', '--host', '127.0.0.1', '--port', '8001',
    ])
    expect(plan.argv.join(' ')).not.toContain('s3cret')
    expect(plan.env).toEqual({ PATH: '/bin', HF_HOME: '/hf', TOKEN: 's3cret' })
    expect(plan.container).toEqual({ docker: 'docker', name: 'llamactl-v' })
  })

  test('llamactl\'s own LLAMACTL_* variables are left out of the inherited environment, natively and for the Docker client', () => {
    const base = { PATH: '/bin', LLAMACTL_MANAGEMENT_KEYS: 'mk', LLAMACTL_INFERENCE_KEYS: 'ik', LLAMACTL_ANYTHING: 'x', llamactl_lower: 'kept' }
    const config = setup({ LLAMACTL_LLAMACPP_ENV: 'LLAMACTL_BACKEND_SET=b', LLAMACTL_LLAMACPP_DOCKER_IMAGE: 'img' })
    const native = launchPlan('l', withDefaults({ environment: { LLAMACTL_INSTANCE_SET: 'i' } }, config), config.backends['llama-cpp'], where, base)
    expect(native.env).toEqual({ PATH: '/bin', llamactl_lower: 'kept', LLAMA_CACHE: config.backends['llama-cpp'].cache_dir, LLAMACTL_BACKEND_SET: 'b', LLAMACTL_INSTANCE_SET: 'i' })
    const docker = launchPlan('l', withDefaults({ docker_enabled: true, environment: { LLAMACTL_INSTANCE_SET: 'i' } }, config), config.backends['llama-cpp'], where, base)
    expect(docker.env).toEqual({ PATH: '/bin', llamactl_lower: 'kept', LLAMACTL_BACKEND_SET: 'b', LLAMACTL_INSTANCE_SET: 'i' })
    expect(docker.argv.filter((a, i) => docker.argv[i - 1] === '-e')).toEqual(['LLAMACTL_BACKEND_SET', 'LLAMACTL_INSTANCE_SET'])
  })

  test('a native llama.cpp instance gets LLAMA_CACHE = the model cache (so -hf finds downloads), unless its environment sets one', () => {
    const config = setup({ LLAMACTL_LLAMACPP_CACHE_DIR: '/models/cache' })
    expect(launchPlan('l', withDefaults({}, config), config.backends['llama-cpp'], where, {}).env.LLAMA_CACHE).toBe('/models/cache')
    const own = withDefaults({ environment: { LLAMA_CACHE: '/elsewhere' } }, config)
    expect(launchPlan('l', own, config.backends['llama-cpp'], where, {}).env.LLAMA_CACHE).toBe('/elsewhere')
    expect(launchPlan('v', withDefaults({ backend_type: 'vllm', backend_options: { model: 'm' } }, config), config.backends.vllm, where, {}).env.LLAMA_CACHE).toBeUndefined()
  })

  test('Docker without an image cannot launch', () => {
    const config = setup({ LLAMACTL_LLAMACPP_DOCKER_ENABLED: 'true' })
    expect(() => launchPlan('l', withDefaults({}, config), config.backends['llama-cpp'], where, {})).toThrow('backends.llama-cpp.docker.image is not set')
  })
})
