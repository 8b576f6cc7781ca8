// The engine double packaged like a third-party engine: a module whose default export is an
// EngineProvider, named in config by module specifier (used by the end-to-end tests).

import { createEngineDouble } from './engine-double.js'

export default createEngineDouble('engine-double-module')
