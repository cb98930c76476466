import type { Execution, ExecutionStatus, FileOpRequest, KernelMode, ToolDeclaration } from '@kernelfleet/contracts';
import type { AcceptRequest } from './accept-request';
import type { ExecutionRef } from './keys';

/** An execution as the worker needs it: the wire view plus the request it must run. */
export interface ExecutionRecord {
  ref: ExecutionRef;
  seq: number;
  status: ExecutionStatus;
  code: string;
  acceptedAt: number;
  deadlineAt: number;
  startedAt?: number;
  kernelMode: KernelMode;
  reset: boolean;
  ownerId?: string;
  retryOnKernelLoss: boolean;
  workerId?: string;
  cancelRequested: boolean;
  /** Already re-run once after its kernel was lost (`retryOnKernelLoss`). */
  retried: boolean;
  /** Tools the code may call (docs/tools.md); empty: none. */
  tools: ToolDeclaration[];
  /** How long one tool call may wait for its answer; undefined: until the deadline. */
  toolCallTimeoutMs?: number;
  /** Set for a file operation (docs/files.md): it runs no code. */
  fileOp?: FileOpRequest;
}

/** Request fields stored at accept, as the hash holds them (the deadline apart: accept.lib.lua takes it on its own). */
export function requestFields(r: Omit<AcceptRequest, 'acceptedAt' | 'deadlineAt' | 'executionId'>): string[] {
  const fields = [
    'tenant', r.tenant,
    'sessionId', r.sessionId,
    'code', r.code,
    'kernelMode', r.kernelMode,
    'reset', r.reset ? '1' : '0',
    'retryOnKernelLoss', r.retryOnKernelLoss ? '1' : '0',
  ];
  if (r.ownerId) fields.push('ownerId', r.ownerId);
  if (r.tools?.length) fields.push('tools', JSON.stringify(r.tools));
  if (r.toolCallTimeoutMs !== undefined) fields.push('toolCallTimeoutMs', String(r.toolCallTimeoutMs));
  if (r.fileOp) fields.push('fileOp', JSON.stringify(r.fileOp));
  if (r.waiter) fields.push('waiter', r.waiter);
  if (r.follower) fields.push('follower', r.follower);
  return fields;
}

export function toRecord(ref: ExecutionRef, h: Record<string, string>): ExecutionRecord {
  return {
    ref,
    seq: Number(h.seq),
    status: h.status as ExecutionStatus,
    code: h.code ?? '',
    acceptedAt: Number(h.acceptedAt),
    deadlineAt: Number(h.deadlineAt),
    startedAt: h.startedAt ? Number(h.startedAt) : undefined,
    kernelMode: (h.kernelMode as KernelMode) ?? 'session',
    reset: h.reset === '1',
    ownerId: h.ownerId || undefined,
    retryOnKernelLoss: h.retryOnKernelLoss === '1',
    workerId: h.workerId || undefined,
    cancelRequested: h.cancelRequested === '1',
    retried: h.retried === '1',
    tools: h.tools ? (JSON.parse(h.tools) as ToolDeclaration[]) : [],
    toolCallTimeoutMs: h.toolCallTimeoutMs ? Number(h.toolCallTimeoutMs) : undefined,
    fileOp: h.fileOp ? (JSON.parse(h.fileOp) as FileOpRequest) : undefined,
  };
}

/** The wire view: the stored terminal document, or what is known so far. */
export function toExecution(ref: ExecutionRef, h: Record<string, string>): Execution {
  if (h.doc) return JSON.parse(h.doc) as Execution;
  const r = toRecord(ref, h);
  return {
    executionId: ref.executionId,
    sessionId: ref.sessionId,
    seq: r.seq,
    status: r.status,
    ownerId: r.ownerId,
    kernelMode: r.kernelMode,
    timings: { acceptedAt: r.acceptedAt, deadlineAt: r.deadlineAt, startedAt: r.startedAt },
  };
}
