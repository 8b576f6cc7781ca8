// The TuFT TypeScript client for the Tinker API: public exports (package entry `tuft/client`).

export type {
  ForwardBackwardOutput,
  OutputTensor,
} from '../core/wire/fwdbwd-output.js'
export type { CheckpointKind, TinkerPath } from '../core/wire/paths.js'
export { formatTinkerPath, parseTinkerPath } from '../core/wire/paths.js'
export type { SampledSequenceView, SampleResponseView, StopReason } from '../core/wire/sample-response.js'
export type {
  AdamParams,
  Checkpoint,
  CheckpointsResponse,
  Cursor,
  GetInfoResponse,
  LoadWeightsResult,
  ModelInput,
  OptimStepResult,
  SamplerResponse,
  SamplingParams,
  ServerCapabilitiesResponse,
  SessionResponse,
  SessionsResponse,
  TrainingRun,
  TrainingRunsResponse,
  WeightsInfoResponse,
} from '../core/wire/schemas.js'
export { chunkData, mergeChunkResults, mergeMetrics } from './chunks.js'
export {
  type Datum,
  datumFromTokens,
  estimateDatumBytes,
  type ModelInputChunk,
  makeDatum,
  modelInputFromTokens,
  modelInputLength,
  type TensorInput,
  toTensor,
  type WireTensor,
} from './datum.js'
export {
  APIConnectionError,
  APIStatusError,
  type FailureCategory,
  FutureExpiredError,
  RequestFailedError,
  ResponseFormatError,
} from './errors.js'
export { DEFAULT_RETRY, type RetryOptions } from './http.js'
export { type AccessScope, type ArchiveUrl, RestClient } from './rest.js'
export { type SampleOptions, type SamplePrompt, SamplingClient } from './sampling.js'
export { type LoraOptions, ServiceClient, type ServiceClientOptions } from './service.js'
export { type ForwardBackwardResult, type LossFnName, TrainingClient } from './training.js'
