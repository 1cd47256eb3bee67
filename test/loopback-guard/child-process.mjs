/**
 * The loopback guard in a Node child process of a test, loaded with
 * `--import` through NODE_OPTIONS (`../loopback-guard.ts` sets it). A refused
 * attempt fails where it is made, is printed on stderr, and the process exits
 * with code 99 whatever code it meant to exit with, so the test that started
 * it sees the failure.
 */
import { install } from "./install.mjs"

/** The exit code of a child process that tried to leave loopback. */
const violationExitCode = 99

let violated = false
install({
  onViolation: (message, stack) => {
    violated = true
    process.stderr.write(`[loopback guard] ${message}\n${stack}\n`)
  },
})
process.on("exit", () => {
  if (violated) process.exitCode = violationExitCode
})
