// The protobuf side of the Tinker wire (spec §5.5, §5.8, §5.12): one import for the server routes and
// the TS client. The codecs live in small files next to this one.

export {
  decodeForwardBackwardOutput,
  encodeForwardBackwardOutput,
  type ForwardBackwardOutput,
  type ForwardBackwardOutputInput,
  type OutputTensor,
} from './fwdbwd-output.js'
export {
  type Datum,
  decodeForwardBackwardRequest,
  encodeForwardBackwardRequest,
  type ForwardBackwardBody,
  type ForwardBackwardRequest,
  type ModelInputChunk,
  readForwardBackwardBody,
} from './fwdbwd-request.js'
export {
  decodeSampleResponse,
  encodeSampleResponse,
  type SampledSequenceView,
  type SampleResponseInput,
  type SampleResponseView,
  type StopReason,
  UNUSED_TOPK_LOGPROB,
} from './sample-response.js'
export { elementCount, type WireDtype, type WireTensor } from './tensors.js'
export { decompressZstd } from './zstd.js'
