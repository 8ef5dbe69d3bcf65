// ESLint for the web UI's modules (chatport/api/ui/static), run by .ci/run with the Node
// test tools (npm ci --prefix tests/node installs ESLint there):
//   tests/node/node_modules/.bin/eslint chatport/api/ui/static
import { createRequire } from "node:module";

const require = createRequire(new URL("./tests/node/package.json", import.meta.url));
const js = require("@eslint/js");
const globals = require("globals");

export default [
  {
    files: ["chatport/api/ui/static/**/*.js"],
    languageOptions: { ecmaVersion: 2024, sourceType: "module", globals: { ...globals.browser } },
    rules: {
      ...js.configs.recommended.rules,
      "no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_" }],
      eqeqeq: ["error", "always"],
      "no-var": "error",
      "prefer-const": "error",
      "no-implicit-globals": "error",
      "no-shadow": "error",
      "no-throw-literal": "error",
      "no-unreachable-loop": "error",
      "no-use-before-define": ["error", { functions: false, classes: true, variables: true }],
    },
  },
];
