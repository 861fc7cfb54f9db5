/**
 * vLLM: `vllm serve [MODEL] [flags]`.
 *
 * The flag table reflects vLLM 0.11 (the `vllm serve` parser built by
 * vllm/entrypoints/openai/cli_args.py and vllm/engine/arg_utils.py, late 2025); vLLM cannot
 * run on this build machine, so no test compares it with a live --help. Rules of that parser
 * followed here: boolean config fields take `--x` and `--no-x`; list fields take several values
 * after one flag (nargs '+'), except --middleware, which repeats; JSON-valued fields
 * (--rope-scaling, --speculative-config, …) are strings holding the JSON; --max-model-len and
 * --max-num-batched-tokens also accept sizes like `32k`.
 */
import { type FlagSpec, opt } from './spec'
import { PORT_FIELD } from './types'
import { defineBackend } from './define'

/** A boolean with argparse's BooleanOptionalAction: `--x` and `--no-x`. */
const yesNo = (flag: string): FlagSpec => opt(`${flag} / --no-${flag.slice(2)}`, 'bool')

export const VLLM_FLAGS: FlagSpec[] = [
  // vllm serve itself
  opt('--headless', 'bool'),
  opt('-asc, --api-server-count', 'int'),
  opt('--config', 'string'),
  // Frontend
  opt('--host', 'string'),
  opt('--port', 'int'),
  opt('--uds', 'string'),
  opt('--uvicorn-log-level', 'string'),
  yesNo('--disable-uvicorn-access-log'),
  yesNo('--allow-credentials'),
  opt('--allowed-origins', 'json_list'),
  opt('--allowed-methods', 'json_list'),
  opt('--allowed-headers', 'json_list'),
  opt('--api-key', 'list', 'nargs'),
  opt('--lora-modules', 'list', 'nargs'),
  opt('--chat-template', 'string'),
  opt('--chat-template-content-format', 'string'),
  yesNo('--trust-request-chat-template'),
  opt('--response-role', 'string'),
  opt('--ssl-keyfile', 'string'),
  opt('--ssl-certfile', 'string'),
  opt('--ssl-ca-certs', 'string'),
  yesNo('--enable-ssl-refresh'),
  opt('--ssl-cert-reqs', 'int'),
  opt('--root-path', 'string'),
  opt('--middleware', 'list', 'repeat'),
  yesNo('--return-tokens-as-token-ids'),
  yesNo('--disable-frontend-multiprocessing'),
  yesNo('--enable-request-id-headers'),
  yesNo('--enable-auto-tool-choice'),
  yesNo('--exclude-tools-when-tool-choice-none'),
  opt('--tool-call-parser', 'string'),
  opt('--tool-parser-plugin', 'string'),
  opt('--tool-server', 'string'),
  opt('--log-config-file', 'string'),
  opt('--max-log-len', 'int'),
  yesNo('--disable-fastapi-docs'),
  yesNo('--enable-prompt-tokens-details'),
  yesNo('--enable-server-load-tracking'),
  yesNo('--enable-force-include-usage'),
  yesNo('--enable-tokenizer-info-endpoint'),
  yesNo('--enable-log-outputs'),
  opt('--h11-max-incomplete-event-size', 'int'),
  opt('--h11-max-header-count', 'int'),
  yesNo('--log-error-stack'),
  yesNo('--tokens-only'),
  // ModelConfig
  opt('--model', 'string'),
  opt('--runner', 'string'),
  opt('--convert', 'string'),
  opt('--task', 'string'), // deprecated in vLLM
  opt('--tokenizer', 'string'),
  opt('--tokenizer-mode', 'string'),
  yesNo('--trust-remote-code'),
  opt('--dtype', 'string'),
  opt('--seed', 'int'),
  opt('--hf-config-path', 'string'),
  opt('--allowed-local-media-path', 'string'),
  opt('--allowed-media-domains', 'list', 'nargs'),
  opt('--revision', 'string'),
  opt('--code-revision', 'string'),
  opt('--rope-scaling', 'string'),
  opt('--rope-theta', 'float'),
  opt('--tokenizer-revision', 'string'),
  opt('--max-model-len', 'int_or_string'),
  opt('--quantization, -q', 'string'),
  yesNo('--enforce-eager'),
  opt('--max-logprobs', 'int'),
  opt('--logprobs-mode', 'string'),
  yesNo('--disable-sliding-window'),
  yesNo('--disable-cascade-attn'),
  yesNo('--skip-tokenizer-init'),
  yesNo('--enable-prompt-embeds'),
  opt('--served-model-name', 'list', 'nargs'),
  opt('--config-format', 'string'),
  opt('--hf-token', 'bool_or_string'),
  opt('--hf-overrides', 'string'),
  opt('--pooler-config', 'string'),
  opt('--override-pooler-config', 'string', { names: 'override_pooling_config' }), // deprecated in vLLM
  opt('--logits-processor-pattern', 'string'),
  opt('--generation-config', 'string'),
  opt('--override-generation-config', 'string'),
  yesNo('--enable-sleep-mode'),
  opt('--model-impl', 'string'),
  opt('--override-attention-dtype', 'string'),
  opt('--logits-processors', 'list', 'nargs'),
  opt('--io-processor-plugin', 'string'),
  // LoadConfig
  opt('--load-format', 'string'),
  opt('--download-dir', 'string'),
  opt('--safetensors-load-strategy', 'string'),
  opt('--model-loader-extra-config', 'string'),
  opt('--ignore-patterns', 'list', 'nargs'),
  yesNo('--use-tqdm-on-load'),
  opt('--pt-load-map-location', 'string'),
  // StructuredOutputsConfig (the guided-decoding flags are deprecated in vLLM and take a value)
  opt('--reasoning-parser', 'string'),
  opt('--guided-decoding-backend', 'string'),
  opt('--guided-decoding-disable-fallback', 'string'),
  opt('--guided-decoding-disable-any-whitespace', 'string'),
  opt('--guided-decoding-disable-additional-properties', 'string'),
  // ParallelConfig
  opt('--distributed-executor-backend', 'string'),
  opt('--pipeline-parallel-size, -pp', 'int'),
  opt('--tensor-parallel-size, -tp', 'int'),
  opt('--decode-context-parallel-size, -dcp', 'int'),
  opt('--data-parallel-size, -dp', 'int'),
  opt('--data-parallel-rank, -dpn', 'int'),
  opt('--data-parallel-start-rank, -dpr', 'int'),
  opt('--data-parallel-size-local, -dpl', 'int'),
  opt('--data-parallel-address, -dpa', 'string'),
  opt('--data-parallel-rpc-port, -dpp', 'int'),
  opt('--data-parallel-backend, -dpb', 'string'),
  yesNo('--data-parallel-hybrid-lb'),
  yesNo('--enable-expert-parallel'),
  opt('--all2all-backend', 'string'),
  yesNo('--enable-dbo'),
  opt('--dbo-decode-token-threshold', 'int'),
  opt('--dbo-prefill-token-threshold', 'int'),
  yesNo('--disable-nccl-for-dp-synchronization'),
  yesNo('--enable-eplb'),
  opt('--eplb-config', 'string'),
  opt('--expert-placement-strategy', 'string'),
  opt('--num-redundant-experts', 'int'), // deprecated in vLLM
  opt('--eplb-window-size', 'int'), // deprecated in vLLM
  opt('--eplb-step-interval', 'int'), // deprecated in vLLM
  yesNo('--eplb-log-balancedness'), // deprecated in vLLM
  opt('--max-parallel-loading-workers', 'int'),
  yesNo('--ray-workers-use-nsight'),
  yesNo('--disable-custom-all-reduce'),
  opt('--worker-cls', 'string', { names: 'worker_class' }),
  opt('--worker-extension-cls', 'string'),
  opt('--enable-multimodal-encoder-data-parallel', 'bool'), // deprecated in vLLM
  // CacheConfig
  opt('--block-size', 'int'),
  opt('--gpu-memory-utilization', 'float'),
  opt('--kv-cache-memory-bytes', 'int_or_string'),
  opt('--swap-space', 'float'),
  opt('--kv-cache-dtype', 'string'),
  opt('--num-gpu-blocks-override', 'int'),
  yesNo('--enable-prefix-caching'),
  opt('--prefix-caching-hash-algo', 'string'),
  opt('--cpu-offload-gb', 'float'),
  yesNo('--calculate-kv-scales'),
  yesNo('--kv-sharing-fast-prefill'),
  opt('--mamba-cache-dtype', 'string'),
  opt('--mamba-ssm-cache-dtype', 'string'),
  opt('--mamba-block-size', 'int'),
  // MultiModalConfig
  opt('--limit-mm-per-prompt', 'string'),
  yesNo('--enable-mm-embeds'),
  opt('--media-io-kwargs', 'string'),
  opt('--mm-processor-kwargs', 'string'),
  opt('--mm-processor-cache-gb', 'float'),
  opt('--disable-mm-preprocessor-cache', 'bool'), // deprecated in vLLM
  opt('--mm-processor-cache-type', 'string'),
  opt('--mm-shm-cache-max-object-size-mb', 'int'),
  opt('--mm-encoder-tp-mode', 'string'),
  opt('--mm-encoder-attn-backend', 'string'),
  yesNo('--interleave-mm-strings'),
  yesNo('--skip-mm-profiling'),
  opt('--video-pruning-rate', 'float'),
  // LoRAConfig
  yesNo('--enable-lora'),
  opt('--max-loras', 'int'),
  opt('--max-lora-rank', 'int'),
  opt('--lora-extra-vocab-size', 'int'),
  opt('--lora-dtype', 'string'),
  opt('--max-cpu-loras', 'int'),
  yesNo('--fully-sharded-loras'),
  opt('--default-mm-loras', 'string'),
  // ObservabilityConfig
  opt('--show-hidden-metrics-for-version', 'string'),
  opt('--otlp-traces-endpoint', 'string'),
  opt('--collect-detailed-traces', 'list', 'nargs'),
  // SchedulerConfig
  opt('--max-num-batched-tokens', 'int_or_string'),
  opt('--max-num-seqs', 'int'),
  opt('--max-num-partial-prefills', 'int'),
  opt('--max-long-partial-prefills', 'int'),
  opt('--long-prefill-token-threshold', 'int'),
  opt('--num-lookahead-slots', 'int'),
  opt('--scheduling-policy', 'string'),
  yesNo('--enable-chunked-prefill'),
  yesNo('--disable-chunked-mm-input'),
  opt('--scheduler-cls', 'string'),
  yesNo('--disable-hybrid-kv-cache-manager'),
  yesNo('--async-scheduling'),
  // CompilationConfig
  opt('--cudagraph-capture-sizes', 'list', 'nargs'),
  opt('--cuda-graph-sizes', 'list', 'nargs'), // deprecated in vLLM
  opt('--max-cudagraph-capture-size', 'int'),
  // VllmConfig
  opt('--speculative-config', 'string'),
  opt('--kv-transfer-config', 'string'),
  opt('--kv-events-config', 'string'),
  opt('--compilation-config, -O', 'string'),
  opt('--additional-config', 'string'),
  opt('--structured-outputs-config', 'string'),
  // Others
  opt('--disable-log-stats', 'bool'),
  opt('--aggregate-engine-logging', 'bool'),
  yesNo('--enable-log-requests'),
  yesNo('--disable-log-requests'), // deprecated in vLLM

  // Options of older vLLM releases that the original llamactl's form offers. vLLM cannot be
  // asked here what it understands, so they are passed as they are, for the vLLM that has them.
  ...(
    [
      ['--quantization-param-path', 'string'], ['--worker-use-ray', 'bool'], ['--use-v2-block-manager', 'bool'],
      ['--max-context-len-to-capture', 'int'], ['--max-seq-len-to-capture', 'int'], ['--tokenizer-pool-size', 'int'],
      ['--tokenizer-pool-type', 'string'], ['--tokenizer-pool-extra-config', 'string'], ['--enable-lora-bias', 'bool'],
      ['--lora-rank', 'int'], ['--prompt-lookback-distance', 'int'], ['--preemption-mode', 'string'],
      ['--disable-async-output-proc', 'bool'], ['--enabled-lora-modules', 'string'], ['--prompt-adapters', 'string'],
      ['--max-prompt-adapter-token', 'int'], ['--device', 'string'], ['--scheduler-delay', 'float'],
      ['--speculative-model', 'string'], ['--speculative-model-quantization', 'string'], ['--speculative-revision', 'string'],
      ['--speculative-max-model-len', 'int'], ['--speculative-disable-by-batch-size', 'int'], ['--ngpt-speculative-length', 'int'],
      ['--speculative-disable-mqa', 'bool'], ['--preloaded-lora-modules', 'string'], ['--enable-token-usage', 'bool'],
      ['--enable-async-engine-debug', 'bool'], ['--engine-use-ray', 'bool'], ['--multi-modal-config', 'string'],
      ['--enable-chunking-request', 'bool'], ['--disable-sliding-window-mask', 'bool'], ['--enable-trtllm-engine-latency', 'bool'],
      ['--override-neuron-config', 'string'], ['--override-kv-cache-align-size', 'int'],
    ] as const
  ).map(([flag, type]) => opt(flag, type, { removed: { note: 'vLLM 0.11 does not have it; an older vLLM may' } })),
]

const PYTHON = /^python[0-9.]*$/

export const vllm = defineBackend({
  type: 'vllm',
  configKey: 'vllm',
  label: 'vllm serve',
  title: 'vLLM',
  formFields: [
    { name: 'model', label: 'Model', hint: 'a path or a Hugging Face repository', numeric: false },
    { name: 'max_model_len', label: 'Context size', hint: 'max_model_len, in tokens', numeric: true },
    PORT_FIELD,
  ],
  routeName: 'vllm',
  seedKey: 'vllm_server_options',
  flags: VLLM_FLAGS,
  // `vllm serve MODEL …`; in Docker the image's entrypoint is `vllm serve` (as vllm/vllm-openai's is).
  subcommand: ['serve'],
  positional: 'model',
  dialect: { style: 'argparse', underscores: true, attachedShort: true },
  /** `vllm serve`, `/path/to/vllm serve`, `python -m vllm.entrypoints.openai.api_server`. */
  programLength(words) {
    const base = (w: string | undefined) => w?.split('/').pop() ?? ''
    if (base(words[0]) === 'vllm') return words[1] === 'serve' ? 2 : 1
    if (words[0] === 'serve') return 1
    if (PYTHON.test(base(words[0])) && words[1] === '-m' && words[2]?.startsWith('vllm')) return words[3] === 'serve' ? 4 : 3
    return 0
  },
})
