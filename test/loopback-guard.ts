/**
 * The vitest setup file of every package (`vitest.shared.ts` names it): tests
 * talk only to loopback (127.0.0.0/8 and ::1), and no DNS query leaves the
 * machine, here or in CI, where the resolver is a private address.
 *
 * It installs the loopback guard (`loopback-guard/install.mjs` says what it
 * wraps) in the test process. An attempt to reach another address, or to
 * query DNS, fails where it is made, and fails the test that made it even
 * when the code under test swallowed the error: every refused attempt is
 * reported, with the stack that made it, by the test it happened in, by the
 * next test when a hook before it made it, or at the end of the file. Node
 * child processes a test starts get the guard through NODE_OPTIONS
 * (`loopback-guard/child-process.mjs`): there a refused attempt is printed on
 * stderr and the process exits with code 99.
 *
 * A test that means to check a refusal before any connection (a URL outside
 * loopback refused by its own code) needs nothing: only attempts count.
 */
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterAll, afterEach, beforeEach, expect } from "vitest"
import { install } from "./loopback-guard/install.mjs"

const guard = install({
  onViolation: (message: string) => {
    const test = expect.getState().currentTestName ?? "outside a test"
    process.stderr.write(`\n[loopback guard] ${test}: ${message}\n`)
  },
})

const childGuard = pathToFileURL(
  fileURLToPath(new URL("./loopback-guard/child-process.mjs", import.meta.url)),
).href
const nodeOptions = process.env["NODE_OPTIONS"] ?? ""
if (!nodeOptions.includes(childGuard)) {
  process.env["NODE_OPTIONS"] = `${nodeOptions} --import=${childGuard}`.trim()
}

const failOnViolations = (where: string) => {
  const violations = guard.takeViolations()
  if (violations.length === 0) return
  throw new Error(
    `${where} tried to leave loopback ${violations.length} time(s):\n\n` +
      violations.map((v) => `${v.message}\n${v.stack}`).join("\n\n"),
  )
}

beforeEach(() => failOnViolations("a hook that ran before this test"))
afterEach((context) => failOnViolations(`the test "${context.task.name}"`))
afterAll(() => failOnViolations("a hook of this file"))
