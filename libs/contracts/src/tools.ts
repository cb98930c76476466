import { z } from 'zod';

/** A tool's name as Python code calls it: `tool.<name>(…)` (wire contract). */
export const TOOL_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Tools one execution may declare. */
export const MAX_TOOLS = 64;
/** Calls of one execution waiting for an answer at once; more wait in the kernel. */
export const MAX_PENDING_TOOL_CALLS = 16;
/** `description` of a declared tool, at most (characters). */
export const MAX_TOOL_DESCRIPTION_CHARS = 4_096;

/** One tool an execution declares (wire contract): Python code may then call `tool.<name>(…)`. */
export const toolDeclarationSchema = z.strictObject({
  name: z.string().regex(TOOL_NAME_PATTERN, 'must be a Python identifier of 1-64 characters ([A-Za-z_][A-Za-z0-9_]*)'),
  description: z.string().max(MAX_TOOL_DESCRIPTION_CHARS).optional(),
});
export type ToolDeclaration = z.infer<typeof toolDeclarationSchema>;

/** The `tools` field of a submit: at most MAX_TOOLS, names unique. */
export const toolsSchema = z
  .array(toolDeclarationSchema)
  .max(MAX_TOOLS, `must declare at most ${MAX_TOOLS} tools`)
  .superRefine((tools, ctx) => {
    const seen = new Set<string>();
    tools.forEach((tool, index) => {
      if (seen.has(tool.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `"${tool.name}" is declared twice` });
      seen.add(tool.name);
    });
  });

/**
 * Body of `POST /v1/executions/{id}/tool-calls/{callId}` (wire contract): the client's answer.
 * `value` may be any JSON, `null` included; `error` is what Python's ToolError says.
 */
export const toolAnswerSchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), value: z.json() }),
  z.strictObject({ ok: z.literal(false), error: z.string().min(1, 'must not be empty').max(65_536) }),
]);
export type ToolAnswer = z.infer<typeof toolAnswerSchema>;

/** A call made by code in the kernel, waiting for the client (wire contract). */
export interface ToolCall {
  callId: string;
  name: string;
  args: Record<string, unknown>;
  /** When the call ends unanswered (its own timeout or the execution's deadline, whichever first). */
  deadlineAt: number;
}

/** How a call ended, in the `tool_result` event (wire contract). */
export type ToolCallOutcome = { callId: string; ok: boolean } | { callId: string; timedOut: true } | { callId: string; ended: true };
