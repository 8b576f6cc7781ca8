// The engine double passes the engine conformance suite: once declaring shared-memory snapshots, once
// declaring PEFT-file snapshots (its training engine then has no snapshotAdapter). It is not a
// transformer, so the reference numerics are skipped, saying why.

import { engineConformance } from '../engines/sdk.js'
import { createEngineDouble } from './helpers/engine-double.js'

engineConformance(createEngineDouble('double'), { options: { vocab_size: 48 } })
engineConformance(createEngineDouble('double-peft-files', 'peft-files'), { options: { vocab_size: 48 } })
