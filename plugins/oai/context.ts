// What the OAI route files share across both prefixes: the runtime adapter registry and the models' text
// side (tokenizers, chat templates).

import type { LoraRegistry } from './lora-registry.js'
import type { ModelTexts } from './tokenizer.js'

export interface OaiContext {
  loras: LoraRegistry
  texts: ModelTexts
}
