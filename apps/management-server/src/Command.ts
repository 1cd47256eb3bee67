/**
 * The `spoc-management-server` command line: turns flags into server
 * options and events into log lines. `main.ts` wires it to the process
 * (signals, exit codes); keeping this part free of process state lets tests
 * run it directly.
 *
 * The token is read from a file, never from a flag, so that it does not
 * appear in the process list or the shell history. No log line contains the
 * token or a setting value.
 */
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import type { ManagementServerEvent, ManagementServerOptions } from "./ManagementServer.ts"

export const usage = `Usage: spoc-management-server --config <central.yaml> [options]

Serves GET /api/v1/controllers/<id>/mail-settings from a central YAML file.

Options:
  --config <file>      central YAML file (global settings and groups); reloaded when it changes
  --host <address>     address to bind (default 127.0.0.1)
  --port <number>      port to bind (default 8443; 0 picks a free one)
  --cert <file>        PEM certificate chain: serve HTTPS (with --key)
  --key <file>         PEM private key of the certificate
  --token-file <file>  require "Authorization: Bearer <token>" with the token in this file
  --no-watch           do not reload the file when it changes (SIGHUP still reloads)
  -h, --help           show this help

Without --cert and --key the server speaks plain HTTP, which is allowed only on a
loopback address (127.0.0.1, ::1, localhost).
`

/** What the command line asks for. */
export type Invocation =
  | { readonly _tag: "Help" }
  | { readonly _tag: "Serve"; readonly options: ManagementServerOptions }
  /** `exitCode` 2 for wrong usage, 1 for a file that cannot be read. */
  | { readonly _tag: "Invalid"; readonly message: string; readonly exitCode: 1 | 2 }

class Invalid extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message)
  }
}

const readText = (flag: string, path: string): string => {
  try {
    return readFileSync(path, "utf8")
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? String(cause)
    throw new Invalid(`${flag} ${path} cannot be read (${code})`, 1)
  }
}

const readFlags = (args: ReadonlyArray<string>) => {
  try {
    return parseArgs({
      args: [...args],
      options: {
        config: { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        "token-file": { type: "string" },
        "no-watch": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (cause) {
    throw new Invalid((cause as Error).message, 2)
  }
}

/** Parses the arguments (without `node` and the script). Reads --cert, --key and --token-file. */
export const parseCommand = (args: ReadonlyArray<string>): Invocation => {
  try {
    const flags = readFlags(args)
    if (flags.help === true) return { _tag: "Help" }
    if (flags.config === undefined) throw new Invalid("--config <central.yaml> is required", 2)
    if ((flags.cert === undefined) !== (flags.key === undefined)) {
      throw new Invalid("--cert and --key go together", 2)
    }
    const portText = flags.port ?? "8443"
    const port = Number(portText)
    if (!/^\d{1,5}$/.test(portText) || port > 65535) {
      throw new Invalid(`--port ${portText} is not a port number (0 to 65535)`, 2)
    }
    const tls =
      flags.cert === undefined || flags.key === undefined
        ? undefined
        : { cert: readText("--cert", flags.cert), key: readText("--key", flags.key) }
    const token =
      flags["token-file"] === undefined
        ? undefined
        : readText("--token-file", flags["token-file"]).replace(/\r?\n$/, "")
    return {
      _tag: "Serve",
      options: {
        configPath: flags.config,
        port,
        watch: flags["no-watch"] !== true,
        ...(flags.host === undefined ? {} : { host: flags.host }),
        ...(tls === undefined ? {} : { tls }),
        ...(token === undefined ? {} : { token }),
      },
    }
  } catch (cause) {
    if (cause instanceof Invalid) {
      return { _tag: "Invalid", message: cause.message, exitCode: cause.exitCode }
    }
    throw cause
  }
}

/** One log line for an event, and whether it belongs on stderr. */
export const formatEvent = (
  event: ManagementServerEvent,
  at: Date,
): { readonly line: string; readonly error: boolean } => {
  const time = at.toISOString()
  switch (event._tag) {
    case "Listening":
      return { line: `${time} serving revision ${event.revision} at ${event.url}`, error: false }
    case "Reloaded":
      return {
        line: `${time} reloaded: revision ${event.revision} (was ${event.previous})`,
        error: false,
      }
    case "ReloadFailed":
      return {
        line:
          `${time} ERROR ${event.error.message}\n` +
          `${time} still serving the last good file, revision ${event.serving}`,
        error: true,
      }
    case "Warning":
      return { line: `${time} WARNING ${event.message}`, error: true }
    case "Served":
      return {
        line:
          `${time} ${event.status} ${event.controllerId} ` +
          `[${event.groups.length === 0 ? "global" : event.groups.join(", ")}] ` +
          `${event.revision} ${event.format}`,
        error: false,
      }
    case "Refused":
      return {
        line: `${time} ${event.status} ${event.method} ${event.path}: ${event.reason}`,
        error: false,
      }
  }
}
