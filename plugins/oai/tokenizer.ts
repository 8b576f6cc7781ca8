// A served model's text side for the OpenAI-compatible API: its Hugging Face tokenizer (tokenizer.json +
// tokenizer_config.json in the model directory), its chat template (rendered with @huggingface/jinja)
// and its end-of-sequence ids, loaded once per model.

import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Template } from '@huggingface/jinja'
import { TokenizerLoader } from '@lenml/tokenizers'
import { tuftError } from '../../core/errors.js'
import type { ModelHost } from '../../core/services/models.js'

interface TokenizerConfig {
  chat_template?: string | { name: string; template: string }[]
  bos_token?: string | { content: string } | null
  eos_token?: string | { content: string } | null
}

export interface ChatMessage {
  role: string
  content?: unknown
  [key: string]: unknown
}

type PreTrainedTokenizer = ReturnType<typeof TokenizerLoader.fromPreTrained>

const tokenText = (t: TokenizerConfig['eos_token']) => (typeof t === 'string' ? t : (t?.content ?? ''))

async function readJson<T>(path: string): Promise<T | undefined> {
  if (!existsSync(path)) return undefined
  return JSON.parse(await readFile(path, 'utf8')) as T
}

export class ModelText {
  private readonly template: Template | null

  constructor(
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly config: TokenizerConfig,
    template: string | undefined,
    /** Ids that end generation unless ignore_eos: the tokenizer's EOS and the generation config's. */
    readonly eosIds: number[],
  ) {
    this.template = template === undefined ? null : new Template(template)
  }

  encode(text: string, addSpecialTokens: boolean): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens })
  }

  decode(ids: ArrayLike<number>, skipSpecialTokens: boolean): string {
    if (ids.length === 0) return ''
    return this.tokenizer.decode(Array.from(ids), {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    })
  }

  /** The conversation as the model's chat template renders it, ending with the assistant's turn. */
  renderChat(messages: ChatMessage[], addGenerationPrompt: boolean, extra: Record<string, unknown>): string {
    if (!this.template) {
      throw tuftError('TUFT_BAD_REQUEST', 'This model has no chat template; use /completions with a prompt')
    }
    return this.template.render({
      ...extra,
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: tokenText(this.config.bos_token),
      eos_token: tokenText(this.config.eos_token),
    })
  }
}

/** The chat template: tokenizer_config.json's (a string or the one named "default"), or chat_template.jinja. */
async function chatTemplateOf(dir: string, config: TokenizerConfig): Promise<string | undefined> {
  const t = config.chat_template
  if (typeof t === 'string') return t
  if (Array.isArray(t)) return (t.find((e) => e.name === 'default') ?? t[0])?.template
  const file = join(dir, 'chat_template.jinja')
  return existsSync(file) ? readFile(file, 'utf8') : undefined
}

async function load(dir: string): Promise<ModelText> {
  const tokenizerJSON = await readJson<object>(join(dir, 'tokenizer.json'))
  const config = (await readJson<TokenizerConfig>(join(dir, 'tokenizer_config.json'))) ?? {}
  if (!tokenizerJSON) throw tuftError('TUFT_CONFIG', `${dir} has no tokenizer.json`)
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig: config as object })
  const eos = new Set<number>()
  const eosText = tokenText(config.eos_token)
  if (eosText) for (const id of tokenizer.encode(eosText, { add_special_tokens: false })) eos.add(id)
  // vLLM stops on the generation config's EOS ids too; transformers derives it from config.json when absent.
  const generation =
    (await readJson<{ eos_token_id?: number | number[] }>(join(dir, 'generation_config.json'))) ??
    (await readJson<{ eos_token_id?: number | number[] }>(join(dir, 'config.json')))
  for (const id of [generation?.eos_token_id ?? []].flat()) eos.add(id)
  return new ModelText(tokenizer, config, await chatTemplateOf(dir, config), [...eos])
}

/** One ModelText per model, loaded on first use. */
export class ModelTexts {
  private readonly loaded = new Map<string, Promise<ModelText>>()

  of(host: ModelHost): Promise<ModelText> {
    let text = this.loaded.get(host.name)
    if (!text) {
      text = load(host.modelDir())
      text.catch(() => this.loaded.delete(host.name))
      this.loaded.set(host.name, text)
    }
    return text
  }
}
