import type { Problem } from './types.js';

/**
 * The api refused a request: `status`, `type`, `title`, `detail` and `field` come from its
 * problem+json answer (`field` is the first field named, e.g. `timeoutMs` or `Idempotency-Key`).
 */
export class KernelfleetError extends Error {
  override readonly name = 'KernelfleetError';
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail?: string;
  readonly field?: string;

  constructor(readonly problem: Problem) {
    super(describe(problem));
    this.status = problem.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.field = problem.errors?.[0]?.field;
  }
}

/**
 * The api could not be reached (or a stream could not be resumed) within the retry budget.
 * `cause` is the last failure.
 */
export class KernelfleetConnectionError extends Error {
  override readonly name = 'KernelfleetConnectionError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function describe(problem: Problem): string {
  const fields = problem.errors?.map((e) => `${e.field}: ${e.message}`).join('; ');
  return `${problem.status} ${problem.title}${problem.detail ? `: ${problem.detail}` : ''}${fields && !problem.detail?.includes(fields) ? ` (${fields})` : ''}`;
}

/**
 * The problem document of a failed response; a body that is not one (a proxy's HTML page, say)
 * becomes a problem of its own with the status and the start of the text.
 */
export async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (parsed && typeof parsed === 'object' && typeof parsed.title === 'string') {
      return { type: 'about:blank', ...parsed, title: parsed.title, status: res.status } as Problem;
    }
  } catch {
    // not JSON: described below
  }
  return { type: 'about:blank', title: res.statusText || `HTTP ${res.status}`, status: res.status, detail: text.slice(0, 500) || undefined };
}
