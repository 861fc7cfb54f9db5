import { llamaCpp } from './llama-cpp'
import { mlx } from './mlx'
import { type Backend, BACKEND_TYPES, type BackendType } from './types'
import { vllm } from './vllm'

export { BACKEND_TYPES, type Backend, type BackendType }

const BY_TYPE: Record<BackendType, Backend> = { llama_cpp: llamaCpp, mlx_lm: mlx, vllm }

export function backendFor(type: BackendType): Backend {
  return BY_TYPE[type]
}
