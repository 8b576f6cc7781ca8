// Options of the `vllm` sampling provider (supported_models[i].sampling.options), checked at boot.

import { type Static, Type } from '@sinclair/typebox'

export const LaunchSchema = Type.Object(
  {
    command: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String(), { minItems: 1 })], {
      default: 'vllm',
      description: 'the program (and its leading arguments) that takes `serve <model_path> --flags`',
    }),
    args: Type.Array(Type.String(), { default: [], description: 'appended after the flags tuft sets' }),
    env: Type.Record(Type.String(), Type.String(), { default: {} }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: '0: a free loopback port' }),
    startup_timeout_ms: Type.Integer({ minimum: 1000, default: 900_000 }),
    max_restart_backoff_ms: Type.Integer({ minimum: 100, default: 30_000 }),
  },
  { additionalProperties: false },
)

export const VllmConfigSchema = Type.Object(
  {
    base_url: Type.Optional(
      Type.Union(
        [Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })],
        {
          description: 'one or more running `vllm serve` replicas (http://host:port); or use launch',
        },
      ),
    ),
    api_key: Type.Optional(Type.String({ description: 'sent as Bearer; passed as --api-key when launched' })),
    launch: Type.Optional(LaunchSchema),
    served_model_name: Type.Optional(
      Type.String({ description: "the base model's name on the server; default: model_name" }),
    ),
    adapter_dir: Type.Optional(
      Type.String({
        description: 'where sampler weights are written for vLLM to load (default: a temp dir)',
      }),
    ),
    adapter_dir_on_server: Type.Optional(
      Type.String({
        description: 'adapter_dir as the vLLM server sees it (a shared volume mounted elsewhere)',
      }),
    ),
    max_logprobs: Type.Integer({ minimum: 0, default: 20, description: "the server's --max-logprobs" }),
    request_timeout_ms: Type.Integer({ minimum: 100, default: 300_000 }),
  },
  { additionalProperties: false },
)

export type VllmConfig = Static<typeof VllmConfigSchema>
export type LaunchConfig = Static<typeof LaunchSchema>
