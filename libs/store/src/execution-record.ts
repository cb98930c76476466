import type { Execution, ExecutionStatus, KernelMode } from '@kernelfleet/contracts';
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
}

/** Request fields stored at accept, as the hash holds them. */
export function requestFields(r: {
  tenant: string;
  sessionId: string;
  code: string;
  deadlineAt: number;
  kernelMode: KernelMode;
  reset: boolean;
  ownerId?: string;
  retryOnKernelLoss: boolean;
}): string[] {
  const fields = [
    'tenant', r.tenant,
    'sessionId', r.sessionId,
    'code', r.code,
    'deadlineAt', String(r.deadlineAt),
    'kernelMode', r.kernelMode,
    'reset', r.reset ? '1' : '0',
    'retryOnKernelLoss', r.retryOnKernelLoss ? '1' : '0',
  ];
  if (r.ownerId) fields.push('ownerId', r.ownerId);
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
