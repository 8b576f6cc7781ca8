// `tuft/engine`: what a third-party engine package needs. The engine contract (types), coded errors,
// the staging helpers for adapter URIs, and the conformance suite to run from its own node:test file.
// engines/README.md shows a provider written against it.

export type {
  AdamParams,
  AdapterId,
  AdapterRef,
  AdapterStaging,
  EngineCapabilities,
  EngineContext,
  EngineHealth,
  EngineInfo,
  EngineProvider,
  LoraSpec,
  LossFn,
  Manifest,
  OptimResult,
  RequestTrace,
  SampledSequence,
  SampleJob,
  SampleResult,
  SamplingEngine,
  StepOptions,
  StopReason,
  TrainItem,
  TrainItemResult,
  TrainingEngine,
} from '../core/engine.js'
export { adamParamsOf, LOSS_FNS, type WireAdamParams } from '../core/engine.js'
export {
  ERROR_CODES,
  type ErrorCode,
  type FailureCategory,
  isTuftError,
  TuftError,
  tuftError,
} from '../core/errors.js'
export { fileStaging, localDir } from '../core/staging.js'
export { type EngineConformanceOptions, engineConformance } from './conformance/index.js'
