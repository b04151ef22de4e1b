/** A word quoted for a POSIX shell, for commands we print for a person to copy (never for running anything). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}
