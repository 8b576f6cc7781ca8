// The provider's own test: the TuFT engine conformance suite, run with `npm test` (node --test).
import { engineConformance } from 'tuft/engine'
import provider from './index.js'

engineConformance(provider)
