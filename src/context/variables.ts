/** The checked form of a context file's variables, as the runner executes them and the job describes them. */

/** Where an argument of a variable's function comes from (DAMNIT's annotation kinds). */
export type DepRef =
  | { readonly kind: "var"; readonly pattern: string; readonly glob: boolean; readonly hasDefault: boolean; readonly default?: unknown }
  | { readonly kind: "meta"; readonly field: "run_number" | "proposal" | "proposal_path" }
  | { readonly kind: "param"; readonly name: string; readonly hasDefault: boolean; readonly default?: unknown }
  /** `cal#<detector>/<ctype>`: the calibration constants that apply at the run's start (calibration.get) */
  | { readonly kind: "cal"; readonly detector: string; readonly ctype: string; readonly hasDefault: boolean; readonly default?: unknown };

/** What the job and the database need to know of a variable (JSON-able; crosses process boundaries). */
export interface VariableInfo {
  readonly name: string;
  readonly title: string;
  readonly description: string | null;
  readonly tags: readonly string[];
  /** after promotion: proc if it (transitively) depends on proc */
  readonly data: "raw" | "proc";
  /** after promotion: true if it (transitively) depends on a cluster variable */
  readonly cluster: boolean;
  readonly transient: boolean;
  readonly units: string | null;
  readonly summary: string | null;
  /** names of the variables it depends on directly (globs expanded) */
  readonly dependencies: readonly string[];
  readonly line: number | null;
}

export interface ContextVariable extends VariableInfo {
  readonly args: ReadonlyMap<string, DepRef>;
  /** the user's function: (run, deps) => result */
  readonly fn: (run: unknown, deps: Record<string, unknown>) => unknown;
}

/** A problem found while loading a context file, reported with the others. */
export interface ContextProblem {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
}

export function formatProblem(problem: ContextProblem): string {
  const where = problem.line ? `${problem.file}:${problem.line}` : problem.file;
  return `${where}: ${problem.message}`;
}

/** The variables of a context file in execution (topological) order. */
export interface LoadedContext {
  readonly file: string;
  readonly variables: ReadonlyMap<string, ContextVariable>;
  readonly order: readonly string[];
}

export function describeVariables(context: LoadedContext): VariableInfo[] {
  return context.order.map((name) => {
    const { args: _args, fn: _fn, ...info } = context.variables.get(name)!;
    return info;
  });
}
