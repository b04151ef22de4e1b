// ESLint for the sources (src, migrations, bench, test, bin): typescript-eslint's recommended rules, plus how the code
// is written. Not the type-aware set: on this 2-core machine that took 80-95 s for the repo, this one a few seconds.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore marks a name that is unused on purpose (e.g. fields dropped by destructuring a rest).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
    },
  },
  {
    files: ["test/**"],
    rules: {
      // Tests read untyped data (raw SQLite rows, fixtures' expected JSON, Kafka message values) as `any` on purpose:
      // the assertions are what check its shape.
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
);
