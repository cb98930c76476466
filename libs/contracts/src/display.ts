/**
 * Rich outputs of an execution, in the order the kernel produced them (wire contract).
 * Text outputs also appear in `PythonResult.output`; images and json only here.
 */
export type DisplayOutput =
  | { type: 'image'; mimeType: 'image/png' | 'image/jpeg'; data: string }
  | { type: 'json'; data: unknown }
  | { type: 'text'; text: string; markdown: boolean }
  /** A status event (the status MIME type, and the tool bridge's calls and answers), in order. */
  | { type: 'status'; event: unknown };

/** MIME type a kernel uses for status events: they become `status` events and never text. */
export const STATUS_MIME_TYPE = 'application/x-kernelfleet-status';
