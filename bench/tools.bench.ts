/**
 * `npm run bench:tools`: what a tool call (docs/tools.md) costs, end to end.
 *
 * - The floor: the raw kernel round trip of a warm `1+1` through @jupyterlab/services, no queue.
 * - A cell making 100 sequential no-op tool calls, answered at once by a client that follows the
 *   execution's SSE stream and POSTs `{"ok": true, "value": null}` for each `tool_call` (global
 *   fetch: keep-alive), against the same cell calling a plain Python function 100 times; both
 *   through the fleet (1 api, 1 worker), both declaring the tool (the bridge's set-up is in both),
 *   alternating (ABBA), BENCH_TOOL_RUNS pairs (10). Per-call cost = (tools − plain) / 100, per pair.
 * - The same with the answers sent to a second api replica (BENCH_TOOL_REPLICAS=0 skips it).
 * - Where a call's time goes (BENCH_TOOL_PROFILE=0 skips it): the kernel stamps each call's
 *   send and answer with its wall clock, the client stamps each event's arrival and POST with its
 *   own (same machine, same clock).
 *
 * Goal: ≤ 3 ms per call at p50 (printed, not enforced). Prints a table, then
 * `tool_call_p50_ms=… tool_call_p90_ms=… raw_rt_p50_ms=…`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Execution, ToolCall } from '@kernelfleet/contracts';
import { JupyterServer, KernelClient, kernelEnvironment, type KernelHandle } from '@kernelfleet/kernel';
import { readSse } from '../test/support/sse-client';
import { Stack } from '../test/support/stack';
import { prepareBench, printTable, timeEach, runMain } from './app-snapshot';

const RUNS = Number(process.env.BENCH_TOOL_RUNS ?? 10);
const RAW_PER_RUN = 30;
const WARMUP = 2;
const PROFILE_RUNS = 3;
const CALLS = 100;
const GOAL_MS = 3;
const TOOLS = [{ name: 'noop' }];
const TOOLS_CELL = `for i in range(${CALLS}):\n    tool.noop(i=i)`;
const PLAIN_CELL = `def noop(i):\n    return None\nfor i in range(${CALLS}):\n    noop(i=i)`;
/** The tools cell with the kernel's wall clock (ms) at each call's send and answer, printed at the end. */
const PROFILE_CELL = [
  'import time as _time',
  '_stamps = []',
  `for i in range(${CALLS}):`,
  '    _sent = _time.time() * 1000',
  '    tool.noop(i=i)',
  '    _stamps.append([_sent, _time.time() * 1000])',
  "print('\\n'.join(f'{a:.3f} {b:.3f}' for a, b in _stamps))",
].join('\n');

/** This process's wall clock in ms, sub-millisecond (comparable with Python's time.time() * 1000). */
const wallMs = () => performance.timeOrigin + performance.now();

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const p50 = (samples: number[]) => percentile(samples, 50);
const p90 = (samples: number[]) => percentile(samples, 90);
const ms = (n: number) => n.toFixed(2);

/** One tool call as the client saw it (wall clock, ms). */
interface CallSeen {
  i: number;
  arrived: number;
  posted: number;
  answered: number;
}

interface CellRun {
  /** Submit until the `result` event arrived, ms. */
  totalMs: number;
  /** Submit start (wall clock, ms). */
  began: number;
  /** When the `result` event arrived (wall clock, ms). */
  ended: number;
  calls: CallSeen[];
  execution: Execution;
}

/**
 * Submits `code` (declaring the tool) to the session, follows its events on api `follow` and
 * answers each `tool_call` at once on api `answerOn`; resolves when the `result` event arrives.
 */
async function runCell(stack: Stack, sessionId: string, code: string, follow: number, answerOn: number): Promise<CellRun> {
  const began = wallMs();
  const { executionId } = await stack.submit(sessionId, { code, tools: TOOLS });
  const calls: CallSeen[] = [];
  const posts: Promise<void>[] = [];
  let seen = 0;
  const stream = await readSse(`${stack.urls[follow]}/v1/executions/${executionId}/events`, stack.headers(), (events) => {
    const arrived = wallMs();
    for (; seen < events.length; seen++) {
      if (events[seen].event !== 'tool_call') continue;
      const call = JSON.parse(events[seen].data) as ToolCall;
      const seenCall: CallSeen = { i: Number(call.args.i), arrived, posted: wallMs(), answered: NaN };
      calls.push(seenCall);
      const path = `/v1/executions/${executionId}/tool-calls/${call.callId}`;
      posts.push(
        stack.request('POST', path, { ok: true, value: null }, { url: stack.urls[answerOn] }).then((res) => {
          seenCall.answered = wallMs();
          if (res.status !== 200) throw new Error(`answer to ${call.callId} got ${res.status}: ${res.text}`);
        }),
      );
    }
    return events.some((e) => e.event === 'result');
  });
  const ended = wallMs();
  const failures = (await Promise.allSettled(posts)).filter((r) => r.status === 'rejected');
  if (failures.length) throw (failures[0] as PromiseRejectedResult).reason;
  const result = stream.events.find((e) => e.event === 'result');
  if (!result) throw new Error(`execution ${executionId}: no result event (HTTP ${stream.status})`);
  const execution = JSON.parse(result.data) as Execution;
  if (execution.status !== 'completed') throw new Error(`execution ${executionId} ${execution.status}: ${JSON.stringify(execution.result)}`);
  if (code !== PLAIN_CELL && calls.length !== CALLS) throw new Error(`execution ${executionId}: ${calls.length} tool calls seen, not ${CALLS}`);
  return { totalMs: ended - began, began, ended, calls, execution };
}

interface PairResult {
  tools: number[];
  plain: number[];
  /** (tools − plain) / CALLS, per pair. */
  perCall: number[];
  /** Client's view of the tools cells: each call's POST latency, gap between tool_call arrivals. */
  postMs: number[];
  cycleMs: number[];
  firstCallMs: number[];
}

/**
 * RUNS pairs of the tools cell and the plain cell, alternating ABBA; `between` runs before each
 * pair (the raw floor's block, so floor and fleet share the noise).
 */
async function pairs(stack: Stack, sessionId: string, follow: number, answerOn: number, between?: () => Promise<void>): Promise<PairResult> {
  for (let i = 0; i < WARMUP; i++) {
    await runCell(stack, sessionId, TOOLS_CELL, follow, answerOn);
    await runCell(stack, sessionId, PLAIN_CELL, follow, answerOn);
  }
  const out: PairResult = { tools: [], plain: [], perCall: [], postMs: [], cycleMs: [], firstCallMs: [] };
  for (let run = 0; run < RUNS; run++) {
    await between?.();
    let tools: CellRun;
    let plain: CellRun;
    if (run % 2 === 0) {
      tools = await runCell(stack, sessionId, TOOLS_CELL, follow, answerOn);
      plain = await runCell(stack, sessionId, PLAIN_CELL, follow, answerOn);
    } else {
      plain = await runCell(stack, sessionId, PLAIN_CELL, follow, answerOn);
      tools = await runCell(stack, sessionId, TOOLS_CELL, follow, answerOn);
    }
    out.tools.push(tools.totalMs);
    out.plain.push(plain.totalMs);
    out.perCall.push((tools.totalMs - plain.totalMs) / CALLS);
    out.firstCallMs.push(tools.calls[0].arrived - tools.began);
    tools.calls.forEach((c, k) => {
      out.postMs.push(c.answered - c.posted);
      if (k > 0) out.cycleMs.push(c.arrived - tools.calls[k - 1].arrived);
    });
  }
  return out;
}

/** Legs of each call from the kernel's and the client's stamps (one wall clock). */
async function profile(stack: Stack, sessionId: string): Promise<Record<string, number[]>> {
  const legs: Record<string, number[]> = { up: [], turn: [], post: [], down: [], gap: [], kernelCall: [] };
  for (let run = 0; run < PROFILE_RUNS; run++) {
    const cell = await runCell(stack, sessionId, PROFILE_CELL, 0, 0);
    const output = cell.execution.result?.output ?? '';
    const stamps = output.trim().split('\n').map((line) => line.split(' ').map(Number) as [number, number]);
    if (stamps.length !== CALLS || stamps.some(([a, b]) => !(a > 0 && b >= a))) throw new Error(`profile cell printed ${JSON.stringify(output.slice(0, 300))}`);
    const byI = new Map(cell.calls.map((c) => [c.i, c]));
    stamps.forEach(([sent, got], i) => {
      const c = byI.get(i)!;
      legs.up.push(c.arrived - sent);
      legs.turn.push(c.posted - c.arrived);
      legs.post.push(c.answered - c.posted);
      legs.down.push(got - c.posted);
      legs.kernelCall.push(got - sent);
      if (i + 1 < stamps.length) legs.gap.push(stamps[i + 1][0] - got);
    });
  }
  return legs;
}

async function main(): Promise<void> {
  const started = Date.now();
  const { python, cleanUp } = await prepareBench();
  const rootDir = mkdtempSync(join(tmpdir(), 'kf-bench-tools-'));
  const server = await JupyterServer.start({ python, rootDir, env: kernelEnvironment(process.env) });
  const client = new KernelClient({ baseUrl: server.url, token: server.token });
  let stack: Stack | undefined;
  try {
    const kernel: KernelHandle = await client.startKernel({ timeoutMs: 30_000 });
    const raw = async () => {
      const outcome = await kernel.execute('1+1', { onStream: () => undefined, onDisplay: () => undefined });
      if (outcome.status !== 'ok') throw new Error(`raw 1+1 answered ${outcome.status}`);
    };
    await timeEach(30, raw);
    const rawSamples: number[] = [];

    // One api, one worker: tools cell vs plain cell, the raw floor in a block before each pair.
    stack = await Stack.start({ apis: 1, workers: 1 });
    const one = await pairs(stack, 'bench-tools', 0, 0, async () => void rawSamples.push(...(await timeEach(RAW_PER_RUN, raw))));
    const legs = process.env.BENCH_TOOL_PROFILE === '0' ? undefined : await profile(stack, 'bench-tools');
    await stack.stop();
    stack = undefined;
    await kernel.shutdown();
    kernel.dispose();

    // Two api replicas: follow on the first, answer on the second.
    let two: PairResult | undefined;
    if (process.env.BENCH_TOOL_REPLICAS !== '0') {
      stack = await Stack.start({ apis: 2, workers: 1 });
      two = await pairs(stack, 'bench-tools-2', 0, 1);
      await stack.stop();
      stack = undefined;
    }

    const rawP50 = p50(rawSamples);
    const callP50 = p50(one.perCall);
    const callP90 = p90(one.perCall);
    const rows: string[][] = [
      ['warm 1+1 round trip, raw (floor)', ms(rawP50), ms(p90(rawSamples)), `n=${rawSamples.length}`],
      [`cell: ${CALLS} tool calls, 1 api`, ms(p50(one.tools)), ms(p90(one.tools)), `n=${one.tools.length}`],
      [`cell: ${CALLS} plain calls, 1 api`, ms(p50(one.plain)), ms(p90(one.plain)), `n=${one.plain.length}`],
      ['per tool call, 1 api ((tools − plain) / 100)', ms(callP50), ms(callP90), `×${(callP50 / rawP50).toFixed(2)} of raw`],
      ['  client: tool_call → next tool_call', ms(p50(one.cycleMs)), ms(p90(one.cycleMs)), `n=${one.cycleMs.length}`],
      ['  client: answer POST latency', ms(p50(one.postMs)), ms(p90(one.postMs)), `n=${one.postMs.length}`],
      ['  client: submit → first tool_call', ms(p50(one.firstCallMs)), ms(p90(one.firstCallMs)), `n=${one.firstCallMs.length}`],
    ];
    if (two) {
      const twoP50 = p50(two.perCall);
      rows.push(
        [`cell: ${CALLS} tool calls, answers on api 2`, ms(p50(two.tools)), ms(p90(two.tools)), `n=${two.tools.length}`],
        [`cell: ${CALLS} plain calls, 2 apis`, ms(p50(two.plain)), ms(p90(two.plain)), `n=${two.plain.length}`],
        ['per tool call, answers on another replica', ms(twoP50), ms(p90(two.perCall)), `×${(twoP50 / callP50).toFixed(2)} of 1 api`],
        ['  client: answer POST latency (api 2)', ms(p50(two.postMs)), ms(p90(two.postMs)), `n=${two.postMs.length}`],
      );
    }
    if (legs) {
      const leg = (name: string, samples: number[]) => rows.push([name, ms(p50(samples)), ms(p90(samples)), `n=${samples.length}`]);
      leg('profile: kernel sends → call returns', legs.kernelCall);
      leg('  kernel sends → client has tool_call', legs.up);
      leg('  client has tool_call → POST sent', legs.turn);
      leg('  POST sent → POST answered (200)', legs.post);
      leg('  POST sent → kernel has the answer', legs.down);
      leg('  kernel has answer → sends the next call', legs.gap);
    }
    const met = callP50 <= GOAL_MS;
    rows.push([`goal: ≤ ${GOAL_MS} ms per call at p50`, ms(callP50), '', `${met ? 'met' : 'NOT met'}, ×${(callP50 / GOAL_MS).toFixed(2)} of goal`]);
    printTable([46, 10, 10, 18], ['measure', 'p50 ms', 'p90 ms', 'note'], rows);
    console.log(`run took ${((Date.now() - started) / 1000).toFixed(0)} s (${RUNS} pairs per stack)`);
    console.log(`tool_call_p50_ms=${ms(callP50)} tool_call_p90_ms=${ms(callP90)} raw_rt_p50_ms=${ms(rawP50)}`);
  } finally {
    await stack?.stop();
    await server.stop();
    rmSync(rootDir, { recursive: true, force: true });
    await cleanUp();
  }
}

runMain(main);
