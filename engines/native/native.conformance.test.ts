// The native engine passes the engine conformance suite, including the PyTorch reference numerics of
// all three fixture architectures (Qwen3, Qwen2, Llama).

import { engineConformance } from '../sdk.js'
import { createNativeProvider } from './index.js'

engineConformance(createNativeProvider(), { options: { threads: 2 } })
