// Shared vitest settings: tests resolve sibling packages to their sources through the
// "@spoc-mail/source" export condition, so a change in core is seen without a rebuild.
import { defineConfig } from "vitest/config"

const conditions = ["@spoc-mail/source", "import", "module", "node", "default"]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["node"] } },
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
})
