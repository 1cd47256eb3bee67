/**
 * Runs the built `spoc-mail` command as a user would, in a child process,
 * and collects its exit code and output. The parent keeps running, so test
 * servers in this process answer the child.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

export const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url))

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `spoc-mail ...args`; the environment holds no SPOC_ variable unless given. */
export const runCli = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 60_000,
): Promise<CliResult> => {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("SPOC_")),
  )
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [mainJs, ...args],
      { env: { ...base, ...env }, timeout: timeoutMs, encoding: "utf8" },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        resolve({ code, stdout, stderr })
      },
    )
  })
}
