#!/usr/bin/env node
/**
 * The `spoc-management-server` command: parses the flags (`Command.ts`),
 * starts the reference Management Server and logs one line per event
 * (requests on stdout, warnings and errors on stderr).
 *
 * Stops on SIGINT or SIGTERM; SIGHUP reloads the file at once.
 * Exit codes: 0 stopped, 1 could not start, 2 wrong usage.
 */
import { formatEvent, parseCommand, usage } from "./Command.ts"
import { ManagementServerError, startManagementServer } from "./ManagementServer.ts"

const main = async (): Promise<void> => {
  const invocation = parseCommand(process.argv.slice(2))
  if (invocation._tag === "Help") return void process.stdout.write(usage)
  if (invocation._tag === "Invalid") {
    process.stderr.write(`spoc-management-server: ${invocation.message}\n`)
    if (invocation.exitCode === 2) process.stderr.write(`\n${usage}`)
    return process.exit(invocation.exitCode)
  }
  try {
    const server = await startManagementServer({
      ...invocation.options,
      onEvent: (event) => {
        const { line, error } = formatEvent(event, new Date())
        ;(error ? process.stderr : process.stdout).write(`${line}\n`)
      },
    })
    const stop = (): void => void server.close().then(() => process.exit(0))
    process.once("SIGINT", stop)
    process.once("SIGTERM", stop)
    process.on("SIGHUP", () => void server.reload())
  } catch (cause) {
    if (!(cause instanceof ManagementServerError)) throw cause
    process.stderr.write(`spoc-management-server: ${cause.message}\n`)
    process.exit(1)
  }
}

void main()
