import { dirname, join } from 'node:path';
import ts from 'typescript';
import * as contracts from '@kernelfleet/contracts';
import type * as Server from '@kernelfleet/contracts';
import type { KernelfleetClient } from './client';
import type { PythonResult as ClientPythonResult } from './execute-python';
import * as wire from './types';
import type * as Client from './types';

/**
 * The client keeps its own copy of the api's wire types (it depends on no server package).
 * These checks fail to compile when the copy and the server's contracts drift apart; the test
 * below runs the compiler on this file, since the specs are transpiled without type checking.
 */

/** True only when A and B are the same type (not merely assignable both ways). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

type ClientOwnerDisposal = Awaited<ReturnType<KernelfleetClient['disposeKernelSessionsByOwner']>>;
type ClientSessionsDisposal = Awaited<ReturnType<KernelfleetClient['disposeAllKernelSessions']>>;

export type WireTypeChecks = [
  Assert<Equals<Client.Execution, Server.Execution>>,
  Assert<Equals<Client.ExecutionEvent, Server.ExecutionEvent>>,
  Assert<Equals<Client.ExecutionEventType, Server.ExecutionEventType>>,
  Assert<Equals<Client.DisplayOutput, Server.DisplayOutput>>,
  Assert<Equals<Client.WirePythonResult, Server.PythonResult>>,
  Assert<Equals<Client.OwnerDisposal, Server.OwnerDisposal>>,
  Assert<Equals<ClientOwnerDisposal, Server.OwnerDisposal>>,
  Assert<Equals<Client.SessionsDisposal, Server.SessionsDisposal>>,
  Assert<Equals<ClientSessionsDisposal, Server.SessionsDisposal>>,
  Assert<Equals<Client.SubmitAccepted, Server.SubmitAccepted>>,
  Assert<Equals<Client.KernelInfo, Server.KernelInfo>>,
  Assert<Equals<Client.ToolCall, Server.ToolCall>>,
  Assert<Equals<Client.ToolCallOutcome, Server.ToolCallOutcome>>,
  Assert<Equals<Client.ExecutionStatus, Server.ExecutionStatus>>,
  Assert<Equals<Client.TerminalStatus, Server.TerminalStatus>>,
  Assert<Equals<Client.KernelMode, Server.KernelMode>>,
  Assert<Equals<Client.Problem, Server.Problem>>,
  Assert<Equals<Client.FileOpOutcome, Server.FileOpOutcome>>,
  Assert<Equals<Client.FileWritten, Server.FileWritten>>,
  Assert<Equals<Client.FileList, Server.FileList>>,
  Assert<Equals<Client.TarWritten, Server.TarWritten>>,
  // The user-facing PythonResult carries every field of the wire's (exitCode as undefined, not null).
  Assert<Equals<Exclude<keyof Server.PythonResult, keyof ClientPythonResult>, never>>,
  Assert<Equals<Omit<Server.PythonResult, 'exitCode'>, Omit<Pick<ClientPythonResult, keyof Server.PythonResult>, 'exitCode'>>>,
];

// Assignments in both directions: what the server sends the client takes, and the reverse.
export const fromServer = {
  execution: (x: Server.Execution): Client.Execution => x,
  event: (x: Server.ExecutionEvent): Client.ExecutionEvent => x,
  display: (x: Server.DisplayOutput): Client.DisplayOutput => x,
  result: (x: Server.PythonResult): Client.WirePythonResult => x,
  owners: (x: Server.OwnerDisposal): ClientOwnerDisposal => x,
};
export const toServer = {
  execution: (x: Client.Execution): Server.Execution => x,
  event: (x: Client.ExecutionEvent): Server.ExecutionEvent => x,
  display: (x: Client.DisplayOutput): Server.DisplayOutput => x,
  result: (x: Client.WirePythonResult): Server.PythonResult => x,
  owners: (x: ClientOwnerDisposal): Server.OwnerDisposal => x,
};

const ROOT = join(__dirname, '..', '..', '..');

/** Compiler options of the repo's tsconfig.json, for a one-off type check (no emit, no build info). */
function compilerOptions(): ts.CompilerOptions {
  const file = join(ROOT, 'tsconfig.json');
  const { config } = ts.readConfigFile(file, ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, dirname(file));
  return { ...options, noEmit: true, incremental: false, tsBuildInfoFile: undefined, isolatedModules: false };
}

/** Type errors of `files` (path → text, kept in memory; other files come from disk). */
function typeErrors(files: Record<string, string>): string[] {
  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, onError, create) =>
    name in files ? ts.createSourceFile(name, files[name], version) : getSourceFile(name, version, onError, create);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name in files || fileExists(name);
  const program = ts.createProgram(Object.keys(files), options, host);
  return Object.keys(files).flatMap((name) => {
    const source = program.getSourceFile(name)!;
    return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map(
      (d) => `${d.start === undefined ? '' : `line ${source.getLineAndCharacterOfPosition(d.start).line + 1}: `}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    );
  });
}

describe('the client’s wire types', () => {
  jest.setTimeout(60_000);

  it('compile against the server’s contracts (this file type-checks)', () => {
    const self = join(__dirname, 'wire-types.spec.ts');
    expect(typeErrors({ [self]: ts.sys.readFile(self)! })).toEqual([]);
  });

  it('would not compile if they drifted: a missing field, a missing union member, an extra optional field', () => {
    const probe = join(__dirname, 'wire-types-drift.probe.ts');
    const text = [
      "import type * as Server from '@kernelfleet/contracts';",
      "import type * as Client from './types';",
      'type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;',
      'type Assert<T extends true> = T;',
      "export type MissingField = Assert<Equals<Omit<Client.Execution, 'phase'>, Server.Execution>>;",
      "export type MissingMember = Assert<Equals<Exclude<Client.ExecutionEvent, { type: 'tool_result' }>, Server.ExecutionEvent>>;",
      // An optional field the server does not send: assignable both ways, but not the same type.
      "interface ExtraOptional extends Client.OwnerDisposal { reason?: string }",
      'export type ExtraField = Assert<Equals<ExtraOptional, Server.OwnerDisposal>>;',
      'export const bothWays = [(x: ExtraOptional): Server.OwnerDisposal => x, (x: Server.OwnerDisposal): ExtraOptional => x];',
    ].join('\n');
    const errors = typeErrors({ [probe]: text });
    expect(errors.map((e) => e.replace(/:.*/s, ''))).toEqual(['line 5', 'line 6', 'line 8']);
    for (const error of errors) expect(error).toMatch(/does not satisfy the constraint 'true'/);
  });

  it('share the runtime constants: statuses, id and tool name patterns', () => {
    expect(wire.EXECUTION_STATUSES).toEqual(contracts.EXECUTION_STATUSES);
    expect(wire.ID_PATTERN.source).toBe(contracts.ID_PATTERN.source);
    expect(wire.ID_PATTERN.flags).toBe(contracts.ID_PATTERN.flags);
    expect(wire.TOOL_NAME_PATTERN.source).toBe(contracts.TOOL_NAME_PATTERN.source);
    for (const status of contracts.EXECUTION_STATUSES) expect(wire.isTerminal(status)).toBe(contracts.isTerminal(status));
  });
});
