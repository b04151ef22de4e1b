/**
 * Quoting for values in supervisord.conf. A value passes through three parsers, and each can mangle it:
 *  1. Python's ConfigParser with `inline_comment_prefixes=(';', '#')`: a `;` or `#` right after whitespace cuts the
 *     line there, even inside quotes (it knows nothing of quotes). A value cannot span lines.
 *  2. supervisor's own `%(here)s` substitution (a plain substring replace) and then `value % expansions`: a literal
 *     `%` must be `%%`, and the text must not contain `%(here)s` anywhere.
 *  3. `command=` is split with `shlex.split` (POSIX rules); `environment=` with a non-POSIX `shlex.shlex` that keeps
 *     quotes in tokens and then strips every quote character from both ends of the value.
 */

import { DamnitError } from "../core/errors.js";

// Python's str.isspace() (what ConfigParser checks before a comment prefix) is a superset of JS \s in ASCII.
const PY_SPACE = /[\s\x1c-\x1f\x85]/u;
const SHLEX_SAFE = /^[A-Za-z0-9@%+=:,./_-]+$/;

function rejectUnrepresentable(what: string, value: string): void {
  // ConfigParser reads line by line (\r, \n) and has no escape for them; execve cannot pass NUL.
  if (/[\r\n\0]/.test(value)) {
    throw new DamnitError("BAD_ARGUMENT", `${what} ${JSON.stringify(value)} contains a line break or NUL, which supervisord.conf cannot hold`);
  }
}

/** One argv element as supervisor's command= parser will read it back. */
export function quoteSupervisorArg(arg: string): string {
  rejectUnrepresentable("Command argument", arg);
  if (SHLEX_SAFE.test(arg)) return arg.replaceAll("%", "%%");
  let out = "'";
  let prev = "";
  for (const ch of arg) {
    if (ch === "'") {
      out += `'"'"'`; // close, a double-quoted ', reopen: POSIX shlex joins adjacent pieces into one word
    } else {
      // An empty '' pair splits "<space>;" and "%(" so neither ConfigParser nor %(here)s substitution sees them.
      if (((ch === ";" || ch === "#") && PY_SPACE.test(prev)) || (ch === "(" && prev === "%")) out += "''";
      out += ch === "%" ? "%%" : ch;
    }
    prev = ch;
  }
  return out + "'";
}

/** The full `command=` value for an argv. */
export function quoteSupervisorCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new DamnitError("BAD_ARGUMENT", "The supervised program needs a command");
  return argv.map(quoteSupervisorArg).join(" ");
}

/**
 * The `environment=` value: KEY="value",... The non-POSIX lexer has no escapes, so a value is quoted with whichever
 * quote it does not contain; values that cannot survive the round trip are refused rather than silently changed.
 */
export function quoteSupervisorEnvironment(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([key, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new DamnitError("BAD_ARGUMENT", `Environment variable name ${JSON.stringify(key)} is not valid for supervisord.conf`);
      rejectUnrepresentable(`Environment variable ${key}`, value);
      const bad = (why: string): Error =>
        new DamnitError("BAD_ARGUMENT", `Environment variable ${key}=${JSON.stringify(value)} cannot be written to supervisord.conf: ${why}`);
      if (/^['"]|['"]$/.test(value)) throw bad("it starts or ends with a quote character");
      const quote = value.includes('"') ? "'" : '"';
      if (value.includes(quote)) throw bad("it contains both kinds of quotes");
      if (/[\s\x1c-\x1f\x85][;#]/u.test(value)) throw bad("a ';' or '#' after whitespace would start a comment");
      const escaped = value.replaceAll("%", "%%");
      if (escaped.includes("%(here)s")) throw bad("it contains '%(here)s'");
      return `${key}=${quote}${escaped}${quote}`;
    })
    .join(",");
}
