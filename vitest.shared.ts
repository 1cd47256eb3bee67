// Shared vitest settings: tests resolve sibling packages to their sources through the
// "@spoc-mail/source" export condition, so a change in core is seen without a rebuild.
// Every test process runs under the loopback guard (test/loopback-guard.ts): nothing
// outside 127.0.0.0/8 and ::1 is reached, and no DNS query leaves the machine.
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// An absolute path: each package's vitest resolves setup files from its own folder.
const loopbackGuard = fileURLToPath(new URL("./test/loopback-guard.ts", import.meta.url))

const conditions = ["@spoc-mail/source", "import", "module", "node", "default"]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["node"] } },
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    setupFiles: [loopbackGuard],
  },
})
