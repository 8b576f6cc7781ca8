// What the OAI route files share across both prefixes: the runtime adapter registry and the models' text
// side (tokenizers, chat templates).

import type { ModelTexts } from '../model-text.js'
import type { LoraRegistry } from './lora-registry.js'

export interface OaiContext {
  loras: LoraRegistry
  texts: ModelTexts
}
