/**
 * The original llamactl's option names, for all three backends, are accepted here with the
 * original's value types, and each one reaches the command line. The names are those of its
 * option structs (pkg/backends/{llama,mlx,vllm}.go, the same as its web UI's form fields) and
 * the other names its llama.cpp options take in JSON (its field mappings: `ngl`, `n_gpu_layers`,
 * `no_kvu`, …). Types: b bool, i int, f float, s string, l list of strings, m map of strings.
 */
import { describe, expect, test } from 'bun:test'
import { backendFor } from '../../src/backends'
import { BadRequest } from '../../src/errors'
import { parseOptions } from '../../src/instances/options'

const LLAMA = `
  verbose_prompt:b threads:i threads_batch:i cpu_mask:s cpu_range:s cpu_strict:i prio:i poll:i cpu_mask_batch:s
  cpu_range_batch:s cpu_strict_batch:i prio_batch:i poll_batch:i ctx_size:i predict:i batch_size:i
  ubatch_size:i keep:i swa_full:b flash_attn:s perf:b no_perf:b escape:b no_escape:b rope_scaling:s
  rope_scale:f rope_freq_base:f rope_freq_scale:f yarn_orig_ctx:i yarn_ext_factor:f yarn_attn_factor:f
  yarn_beta_slow:f yarn_beta_fast:f kv_offload:b no_kv_offload:b repack:b no_repack:b no_host:b cache_type_k:s
  cache_type_v:s defrag_thold:f mlock:b mmap:b no_mmap:b direct_io:b no_direct_io:b numa:s device:s
  override_tensor:l cpu_moe:b n_cpu_moe:i gpu_layers:i split_mode:s tensor_split:s main_gpu:i fit:s
  fit_target:s fit_ctx:i check_tensors:b override_kv:l op_offload:b no_op_offload:b lora:l lora_scaled:l
  control_vector:l control_vector_scaled:l control_vector_layer_range:s model:s model_url:s docker_repo:s
  hf_repo:s hf_repo_draft:s hf_file:s hf_repo_v:s hf_file_v:s hf_token:s log_disable:b log_file:s log_colors:s
  verbose:b offline:b verbosity:i log_prefix:b log_timestamps:b cache_type_k_draft:s cache_type_v_draft:s
  samplers:s seed:i sampling_seq:s ignore_eos:b temp:f top_k:i top_p:f min_p:f top_nsigma:f xtc_probability:f
  xtc_threshold:f typical:f repeat_last_n:i repeat_penalty:f presence_penalty:f frequency_penalty:f
  dry_multiplier:f dry_base:f dry_allowed_length:i dry_penalty_last_n:i dry_sequence_breaker:l
  adaptive_target:f adaptive_decay:f dynatemp_range:f dynatemp_exp:f mirostat:i mirostat_lr:f mirostat_ent:f
  logit_bias:l grammar:s grammar_file:s json_schema:s json_schema_file:s backend_sampling:b ctx_checkpoints:i
  cache_ram:i lookup_cache_static:b lookup_cache_dynamic:b kv_unified:b no_kv_unified:b context_shift:b
  no_context_shift:b reverse_prompt:s special:b warmup:b no_warmup:b spm_infill:b pooling:s parallel:i
  cont_batching:b no_cont_batching:b mmproj:s mmproj_url:s mmproj_auto:b no_mmproj:b no_mmproj_auto:b
  mmproj_offload:b no_mmproj_offload:b image_min_tokens:i image_max_tokens:i override_tensor_draft:l
  cpu_moe_draft:b n_cpu_moe_draft:i alias:s host:s port:i path:s api_prefix:s webui_config:s
  webui_config_file:s webui:b no_webui:b embedding:b reranking:b api_key:s api_key_file:s ssl_key_file:s
  ssl_cert_file:s chat_template_kwargs:s timeout:i threads_http:i cache_prompt:b no_cache_prompt:b
  cache_reuse:i metrics:b props:b slots:b no_slots:b slot_save_path:s media_path:s models_dir:s models_preset:s
  models_max:i models_autoload:b no_models_autoload:b jinja:b no_jinja:b reasoning_format:s reasoning_budget:i
  chat_template:s chat_template_file:s prefill_assistant:b no_prefill_assistant:b slot_prompt_similarity:f
  lora_init_without_apply:b sleep_idle_seconds:i threads_draft:i threads_batch_draft:i draft_max:i draft_min:i
  draft_p_min:f ctx_size_draft:i device_draft:s gpu_layers_draft:i model_draft:s spec_replace:s spec_type:s
  spec_ngram_size_n:i spec_ngram_size_m:i spec_ngram_check_rate:f spec_ngram_min_hits:i model_vocoder:s
  tts_use_guide_tokens:b embd_gemma_default:b fim_qwen_1b:b fim_qwen_1_5b_default:b fim_qwen_3b_default:b
  fim_qwen_7b_default:b fim_qwen_7b_spec:b fim_qwen_14b_spec:b fim_qwen_30b_default:b gpt_oss_20b_default:b
  gpt_oss_120b_default:b vision_gemma_4b_default:b vision_gemma_12b_default:b extra_args:m
`
const MLX = `
  model:s host:s port:i adapter_path:s draft_model:s num_draft_tokens:i trust_remote_code:b log_level:s
  chat_template:s use_default_chat_template:b chat_template_args:s temp:f top_p:f top_k:i min_p:f max_tokens:i
  extra_args:m
`
const VLLM = `
  host:s port:i model:s tokenizer:s skip_tokenizer_init:b revision:s code_revision:s tokenizer_revision:s
  tokenizer_mode:s trust_remote_code:b download_dir:s load_format:s config_format:s dtype:s kv_cache_dtype:s
  quantization_param_path:s seed:i max_model_len:i guided_decoding_backend:s distributed_executor_backend:s
  worker_use_ray:b ray_workers_use_nsight:b block_size:i enable_prefix_caching:b disable_sliding_window:b
  use_v2_block_manager:b num_lookahead_slots:i swap_space:i cpu_offload_gb:i gpu_memory_utilization:f
  num_gpu_blocks_override:i max_num_batched_tokens:i max_num_seqs:i max_logprobs:i disable_log_stats:b
  quantization:s rope_scaling:s rope_theta:f enforce_eager:b max_context_len_to_capture:i
  max_seq_len_to_capture:i disable_custom_all_reduce:b tokenizer_pool_size:i tokenizer_pool_type:s
  tokenizer_pool_extra_config:s enable_lora_bias:b lora_extra_vocab_size:i lora_rank:i
  prompt_lookback_distance:i preemption_mode:s tensor_parallel_size:i pipeline_parallel_size:i
  max_parallel_loading_workers:i disable_async_output_proc:b worker_class:s enabled_lora_modules:s
  max_lora_rank:i fully_sharded_loras:b lora_modules:s prompt_adapters:s max_prompt_adapter_token:i device:s
  scheduler_delay:f enable_chunked_prefill:b speculative_model:s speculative_model_quantization:s
  speculative_revision:s speculative_max_model_len:i speculative_disable_by_batch_size:i
  ngpt_speculative_length:i speculative_disable_mqa:b model_loader_extra_config:s ignore_patterns:s
  preloaded_lora_modules:s uds:s uvicorn_log_level:s response_role:s ssl_keyfile:s ssl_certfile:s
  ssl_ca_certs:s ssl_cert_reqs:i root_path:s middleware:l return_tokens_as_token_ids:b
  disable_frontend_multiprocessing:b enable_auto_tool_choice:b tool_call_parser:s tool_server:s chat_template:s
  chat_template_content_format:s allow_credentials:b allowed_origins:l allowed_methods:l allowed_headers:l
  api_key:l enable_log_outputs:b enable_token_usage:b enable_async_engine_debug:b engine_use_ray:b
  disable_log_requests:b max_log_len:i task:s multi_modal_config:s limit_mm_per_prompt:s enable_sleep_mode:b
  enable_chunking_request:b compilation_config:s disable_sliding_window_mask:b enable_trtllm_engine_latency:b
  override_pooling_config:s override_neuron_config:s override_kv_cache_align_size:i extra_args:m
`
/** Other names → the option they name in the original. */
const LLAMA_OTHER_NAMES = `
  t:threads tb:threads_batch C:cpu_mask Cr:cpu_range Cb:cpu_mask_batch Crb:cpu_range_batch c:ctx_size n:predict
  n_predict:predict b:batch_size ub:ubatch_size fa:flash_attn e:escape kvo:kv_offload nkvo:no_kv_offload
  nr:no_repack ctk:cache_type_k ctv:cache_type_v dt:defrag_thold dio:direct_io ndio:no_direct_io dev:device
  ot:override_tensor cmoe:cpu_moe ncmoe:n_cpu_moe ngl:gpu_layers n_gpu_layers:gpu_layers sm:split_mode
  ts:tensor_split mg:main_gpu fitt:fit_target fitc:fit_ctx m:model mu:model_url dr:docker_repo hf:hf_repo
  hfr:hf_repo hfd:hf_repo_draft hfrd:hf_repo_draft hff:hf_file hfv:hf_repo_v hfrv:hf_repo_v hffv:hf_file_v
  hft:hf_token v:verbose log_verbose:verbose lv:verbosity log_verbosity:verbosity ctkd:cache_type_k_draft
  ctvd:cache_type_v_draft s:seed sampler_seq:sampling_seq l:logit_bias j:json_schema jf:json_schema_file
  bs:backend_sampling swa_checkpoints:ctx_checkpoints cram:cache_ram lcs:lookup_cache_static
  lcd:lookup_cache_dynamic kvu:kv_unified no_kvu:no_kv_unified r:reverse_prompt sp:special np:parallel
  cb:cont_batching nocb:no_cont_batching mm:mmproj mmu:mmproj_url no_mmproj:no_mmproj_auto
  otd:override_tensor_draft cmoed:cpu_moe_draft ncmoed:n_cpu_moe_draft a:alias embeddings:embedding
  rerank:reranking to:timeout sps:slot_prompt_similarity td:threads_draft tbd:threads_batch_draft
  draft:draft_max draft_n:draft_max draft_min:draft_min draft_n_min:draft_min cd:ctx_size_draft
  devd:device_draft ngld:gpu_layers_draft n_gpu_layers_draft:gpu_layers_draft md:model_draft mv:model_vocoder
  fim_qwen_1:fim_qwen_1b
`

const SAMPLE: Record<string, unknown> = { b: true, i: 2, f: 0.5, s: 'x', l: ['a'], m: { 'new-flag': 'v' } }
/** Where the sample of the type is not a value the option can have. */
const SAMPLE_FOR: Record<string, unknown> = { control_vector_layer_range: '0 31' }
const rows = (text: string) => text.trim().split(/\s+/).map((t) => t.split(':') as [string, string])
const where = { host: '127.0.0.1', port: 1 }

/** Values the original's form sends whose meaning llama-server cannot have: refused, with why. */
const REFUSED_VALUES: Record<string, string> = {
  // llama-server's --lookup-cache-static/-dynamic take a file path; the original's form has a checkbox
  lookup_cache_static: 'takes a value',
  lookup_cache_dynamic: 'takes a value',
}

function check(backendType: 'llama_cpp' | 'mlx_lm' | 'vllm', name: string, value: unknown): string | null {
  try {
    const opts = parseOptions({ backend_type: backendType, backend_options: { [name]: value } })
    const argv = backendFor(backendType).buildArgs(opts.backend_options ?? {}, where)
    // every name reaches the command line: a flag besides --host and --port (which llamactl decides)
    if (argv.length <= 4 && name !== 'host' && name !== 'port') return `${name}: adds nothing to ${JSON.stringify(argv)}`
    return null
  } catch (e) {
    if (!(e instanceof BadRequest)) throw e
    return `${name}: ${(e as Error).message}`
  }
}

describe('the original llamactl\'s option names', () => {
  const cases: ['llama_cpp' | 'mlx_lm' | 'vllm', string][] = [['llama_cpp', LLAMA], ['mlx_lm', MLX], ['vllm', VLLM]]
  for (const [type, list] of cases) {
    test(`${type}: every name is accepted with the original's type and reaches argv`, () => {
      const names = rows(list)
      const refused = names.flatMap(([name, t]) => {
        const why = check(type, name, SAMPLE_FOR[name] ?? SAMPLE[t])
        return why === null || (REFUSED_VALUES[name] && why.includes(REFUSED_VALUES[name]!)) ? [] : [why]
      })
      expect(refused).toEqual([])
    })
  }

  test('llama_cpp: its other names mean the same option as the name they map to', () => {
    const types = new Map(rows(LLAMA))
    const llama = backendFor('llama_cpp')
    const wrong: string[] = []
    for (const [other, name] of rows(LLAMA_OTHER_NAMES)) {
      const value = SAMPLE_FOR[name] ?? SAMPLE[types.get(name)!]
      const a = llama.table.resolve(other)
      const b = llama.table.resolve(name)
      if (!a || !b || a.spec !== b.spec || a.negative !== b.negative) wrong.push(`${other} → ${name}`)
      else if (check('llama_cpp', other, value) !== null && !REFUSED_VALUES[name]) wrong.push(`${other}: ${check('llama_cpp', other, value)}`)
    }
    expect(wrong).toEqual([])
  })

  test('false for a value flag the original\'s form shows as a checkbox adds nothing; true is refused naming the value it needs', () => {
    expect(check('llama_cpp', 'lookup_cache_static', false)).toContain('adds nothing')
    expect(check('llama_cpp', 'lookup_cache_static', true)).toContain('--lookup-cache-static takes a value')
  })

  test('the original\'s types where they differ from llama-server\'s: two numbers as one string, extra_args as a map', () => {
    const llama = backendFor('llama_cpp')
    expect(llama.buildArgs({ control_vector_layer_range: '0 31', extra_args: { 'log-file': '/l', verbose: '' } }, where)).toEqual([
      '--control-vector-layer-range', '0', '31', '--log-file', '/l', '--verbose', ...['--host', '127.0.0.1', '--port', '1'],
    ])
    expect(backendFor('vllm').buildArgs({ allowed_origins: ['http://a', 'http://b'] }, where)).toEqual([
      '--allowed-origins', '["http://a","http://b"]', '--host', '127.0.0.1', '--port', '1',
    ])
  })
})
