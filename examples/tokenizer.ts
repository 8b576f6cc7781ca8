// Text ↔ token ids for the examples through the server's own tokenizer (POST /api/v1/tokenize and
// /detokenize, see the README), so that they need no tokenizer download and run offline.

export interface ServerTokenizer {
  /** `chat`: wrap the text as a user message with the model's chat template and generation prompt. */
  encode(text: string, chat?: boolean): Promise<number[]>
  decode(tokens: number[]): Promise<string>
}

export function serverTokenizer(baseUrl: string, apiKey: string, model: string): ServerTokenizer {
  const call = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${baseUrl}/api/v1/${path}`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`)
    return (await res.json()) as T
  }
  return {
    encode: async (text, chat = false) =>
      (await call<{ tokens: number[] }>('tokenize', { model, text, chat_template: chat })).tokens,
    decode: async (tokens) => (await call<{ text: string }>('detokenize', { model, tokens })).text,
  }
}

/** Where the examples find the server: TUFT_BASE_URL / TUFT_API_KEY, else `npm start`'s defaults. */
export const BASE_URL = process.env.TUFT_BASE_URL ?? 'http://127.0.0.1:10610'
export const API_KEY = process.env.TUFT_API_KEY ?? 'tml-local-dev-key'
