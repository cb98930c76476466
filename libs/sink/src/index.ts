export { ChunkSanitizer, sanitizeText, toWellFormed } from './chunk-sanitizer';
export { DEFAULT_SINK_LIMITS, OutputSink } from './output-sink';
export type { SinkFinishOptions, OutputSinkOptions, SinkSummary } from './output-sink';
export { formatByteSize, formatElisionMarker } from './size-formatter';
