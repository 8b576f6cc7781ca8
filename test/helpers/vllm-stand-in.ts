// A stand-in for the `vllm` command on machines without a GPU: takes the `serve <model_path> --flags` line
// that engines/vllm builds, checks the flags the provider relies on, and runs a real tuft server on that
// model whose OpenAI-compatible API speaks the vLLM extensions (runtime LoRA updating when
// VLLM_ALLOW_RUNTIME_LORA_UPDATING is set, as vLLM registers those routes). Usage, as the provider runs it:
//   node --import tsx test/helpers/vllm-stand-in.ts serve <model_path> --port P --enable-lora ...

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stringify } from 'yaml'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8000' },
    'served-model-name': { type: 'string' },
    'enable-lora': { type: 'boolean' },
    'max-lora-rank': { type: 'string', default: '16' },
    'max-loras': { type: 'string', default: '1' },
    'max-cpu-loras': { type: 'string' },
    'max-logprobs': { type: 'string', default: '20' },
    'logprobs-mode': { type: 'string', default: 'raw_logprobs' },
    'max-model-len': { type: 'string' },
    'api-key': { type: 'string' },
  },
})
const [command, modelPath] = positionals
const fail = (why: string): never => {
  process.stderr.write(`vllm-stand-in: ${why}\n`)
  process.exit(2)
}
if (command !== 'serve' || !modelPath) fail('usage: serve <model_path> [flags]')
if (!values['enable-lora']) fail('--enable-lora is required (tuft samples adapters)')
// The native engine reports raw logprobs: a server asked for processed ones would answer other numbers.
if (values['logprobs-mode'] !== 'raw_logprobs')
  fail(`--logprobs-mode ${values['logprobs-mode']} is not served`)
const apiKey = values['api-key'] ?? fail('--api-key is required (tuft authenticates every request)')
const runtimeLora = ['1', 'true'].includes((process.env.VLLM_ALLOW_RUNTIME_LORA_UPDATING ?? '').toLowerCase())

const dir = mkdtempSync(join(tmpdir(), 'vllm-stand-in-'))
const config = {
  host: values.host,
  port: Number(values.port),
  log_level: 'info',
  checkpoint_dir: join(dir, 'checkpoints'),
  model_cache_dir: join(dir, 'models'),
  authorized_users: { [apiKey]: 'vllm' },
  operators: ['vllm'],
  openai_api: {
    runtime_lora_updating: runtimeLora,
    lora_roots: ['/'],
    max_logprobs: Number(values['max-logprobs']),
  },
  supported_models: [
    {
      model_name: values['served-model-name'] ?? modelPath,
      model_path: modelPath,
      capabilities: ['sampling'],
      max_lora_rank: Number(values['max-lora-rank']),
      max_loras: Number(values['max-cpu-loras'] ?? values['max-loras']),
      ...(values['max-model-len'] ? { max_model_len: Number(values['max-model-len']) } : {}),
    },
  ],
  server: { shutdown_grace_ms: 1000 },
}
const configPath = join(dir, 'tuft.config.yaml')
writeFileSync(configPath, stringify(config))
process.argv = [process.argv[0]!, 'tuft', '--config', configPath]
await import('../../bin/cli.js')
