// The sampling playground: a base model or one of the user's sampler checkpoints, a prompt as text
// (through the model's chat template when it has one: POST /api/v1/tokenize) or as token ids, the
// sampling parameters, and the completion with each token's logprob.

import { useEffect, useState } from 'preact/hooks'
import { api, errorText } from '../api.js'
import { Busy, ErrorLine } from '../components/status.js'
import { type Completion, type ModelChoice, openSampler, type Sampler } from '../sampler.js'
import type { Checkpoint } from '../types.js'

interface Tokenized {
  tokens: number[]
  token_strs: string[]
  chat_template?: boolean
  text?: string
}

interface Result {
  completion: Completion
  prompt: Tokenized
  output: Tokenized
}

type Field = 'max_tokens' | 'temperature' | 'top_p' | 'top_k' | 'seed'

const FIELDS: { name: Field; label: string; step: string; min?: string; max?: string }[] = [
  { name: 'max_tokens', label: 'Max tokens', step: '1', min: '1' },
  { name: 'temperature', label: 'Temperature', step: 'any', min: '0' },
  { name: 'top_p', label: 'Top-p', step: 'any', min: '0.01', max: '1' },
  { name: 'top_k', label: 'Top-k (-1: off)', step: '1', min: '-1' },
  { name: 'seed', label: 'Seed (blank: random)', step: '1', min: '0' },
]

function parseTokenIds(text: string): number[] {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '')
  const ids = parts.map(Number)
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0)) {
    throw new Error('Token ids must be whole numbers of 0 or more, separated by spaces or commas.')
  }
  return ids
}

export function Playground() {
  const [baseModels, setBaseModels] = useState<string[]>([])
  const [samplerCheckpoints, setSamplerCheckpoints] = useState<Checkpoint[]>([])
  const [model, setModel] = useState('')
  const [mode, setMode] = useState<'text' | 'tokens'>('text')
  const [prompt, setPrompt] = useState('')
  const [fields, setFields] = useState<Record<Field, string>>({
    max_tokens: '16',
    temperature: '0.7',
    top_p: '1',
    top_k: '-1',
    seed: '',
  })
  const [stop, setStop] = useState('')
  const [sampler, setSampler] = useState<Sampler | null>(null)
  const [result, setResult] = useState<Result | null>(null)
  const [working, setWorking] = useState(false)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let opened: Sampler | null = null
    void (async () => {
      try {
        const [caps, ckpts] = await Promise.all([
          api<{ supported_models: { model_name: string }[] }>('/api/v1/get_server_capabilities'),
          api<{ checkpoints: Checkpoint[] }>('/api/v1/checkpoints?limit=1000'),
          openSampler().then((s) => {
            opened = s
            setSampler(s)
          }),
        ])
        const names = caps.supported_models.map((m) => m.model_name)
        setBaseModels(names)
        setSamplerCheckpoints(ckpts.checkpoints.filter((c) => c.checkpoint_type === 'sampler'))
        setModel((m) => m || (names[0] ? `base:${names[0]}` : ''))
      } catch (err) {
        setError(errorText(err))
      }
    })()
    return () => (opened as Sampler | null)?.close()
  }, [])

  const run = async (event: Event) => {
    event.preventDefault()
    if (!sampler) return
    setWorking(true)
    setError(null)
    try {
      const choice: ModelChoice = model.startsWith('base:')
        ? { base_model: model.slice('base:'.length) }
        : { model_path: model.slice('path:'.length) }
      // The tokenizer is the base model's, also for a checkpoint trained on it.
      const base =
        'base_model' in choice
          ? choice.base_model
          : (
              await api<{ base_model: string }>('/api/v1/weights_info', {
                method: 'POST',
                json: { tinker_path: choice.model_path },
              })
            ).base_model
      const promptTokens: Tokenized =
        mode === 'text'
          ? await api<Tokenized>('/api/v1/tokenize', { method: 'POST', json: { model: base, text: prompt } })
          : await api<Tokenized>('/api/v1/detokenize', {
              method: 'POST',
              json: { model: base, tokens: parseTokenIds(prompt) },
            })
      const seed = fields.seed.trim()
      const completion = await sampler.sample(choice, promptTokens.tokens, {
        max_tokens: Number(fields.max_tokens),
        temperature: Number(fields.temperature),
        top_p: Number(fields.top_p),
        top_k: Number(fields.top_k),
        seed: seed === '' ? null : Number(seed),
        stop: stop
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      })
      const output = await api<Tokenized>('/api/v1/detokenize', {
        method: 'POST',
        json: { model: base, tokens: completion.tokens },
      })
      setResult({ completion, prompt: promptTokens, output })
    } catch (err) {
      setError(errorText(err))
    } finally {
      setWorking(false)
    }
  }

  return (
    <>
      <h1 tabIndex={-1}>Playground</h1>
      <form class="playground" onSubmit={run}>
        <div class="field">
          <label for="pg-model">Model</label>
          <select
            id="pg-model"
            value={model}
            onChange={(e) => setModel((e.currentTarget as HTMLSelectElement).value)}
          >
            <optgroup label="Base models">
              {baseModels.map((m) => (
                <option key={m} value={`base:${m}`}>
                  {m}
                </option>
              ))}
            </optgroup>
            {samplerCheckpoints.length > 0 && (
              <optgroup label="Your sampler checkpoints">
                {samplerCheckpoints.map((c) => (
                  <option key={c.tinker_path} value={`path:${c.tinker_path}`}>
                    {c.tinker_path}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
        </div>
        <fieldset class="field">
          <legend>Prompt as</legend>
          <label>
            <input type="radio" name="pg-mode" checked={mode === 'text'} onChange={() => setMode('text')} />{' '}
            text (chat template applied when the model has one)
          </label>
          <label>
            <input
              type="radio"
              name="pg-mode"
              checked={mode === 'tokens'}
              onChange={() => setMode('tokens')}
            />{' '}
            token ids
          </label>
        </fieldset>
        <div class="field wide">
          <label for="pg-prompt">Prompt</label>
          <textarea
            id="pg-prompt"
            rows={4}
            value={prompt}
            placeholder={mode === 'text' ? 'Write a prompt…' : 'e.g. 9707, 11, 1879'}
            onInput={(e) => setPrompt((e.currentTarget as HTMLTextAreaElement).value)}
          />
        </div>
        <div class="params">
          {FIELDS.map((f) => (
            <div class="field" key={f.name}>
              <label for={`pg-${f.name}`}>{f.label}</label>
              <input
                id={`pg-${f.name}`}
                type="number"
                step={f.step}
                min={f.min}
                max={f.max}
                value={fields[f.name]}
                onInput={(e) =>
                  setFields({ ...fields, [f.name]: (e.currentTarget as HTMLInputElement).value })
                }
              />
            </div>
          ))}
          <div class="field">
            <label for="pg-stop">Stop strings (comma-separated)</label>
            <input
              id="pg-stop"
              value={stop}
              onInput={(e) => setStop((e.currentTarget as HTMLInputElement).value)}
            />
          </div>
        </div>
        <button type="submit" disabled={working || !sampler || model === ''}>
          {working ? 'Sampling…' : 'Sample'}
        </button>
      </form>
      <ErrorLine error={error} />
      {working && <Busy what="Sampling" />}
      {result && <Output result={result} />}
    </>
  )
}

function Output({ result }: { result: Result }) {
  const { completion, prompt, output } = result
  return (
    <section aria-label="Completion" class="completion">
      <h2>Completion</h2>
      <p class="muted">
        {prompt.tokens.length} prompt tokens
        {prompt.chat_template === undefined
          ? ''
          : prompt.chat_template
            ? ', chat template applied'
            : ', no chat template'}
        ; {completion.tokens.length} sampled, stopped by {completion.stopReason}; via the {completion.via}.
      </p>
      <pre class="completion-text">{output.text}</pre>
      <table class="tokens">
        <caption>Sampled tokens and their logprobs</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Token id</th>
            <th scope="col">Text</th>
            <th scope="col">Logprob</th>
            <th scope="col">Probability</th>
          </tr>
        </thead>
        <tbody>
          {completion.tokens.map((t, i) => {
            const lp = completion.logprobs[i]
            return (
              <tr key={i}>
                <td>{i + 1}</td>
                <td>{t}</td>
                <td>
                  <code>{JSON.stringify(output.token_strs[i] ?? '')}</code>
                </td>
                <td class="num">{lp === undefined ? '—' : lp.toFixed(4)}</td>
                <td class="num">{lp === undefined ? '—' : `${(Math.exp(lp) * 100).toFixed(1)}%`}</td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </section>
  )
}
