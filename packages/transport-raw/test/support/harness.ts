/**
 * Test helpers: a connection policy for a loopback server that trusts the
 * fixture root CA (verification on, as always), a composed message, and a
 * runner that collects every log line at debug level.
 */
import { isIP } from "node:net"
import { Message, type Transport, type TransportError } from "@spoc-mail/core"
import { rootCa } from "@spoc-mail/testkit"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import type * as Result from "effect/Result"
import { expect } from "vitest"

export const sender = "print@example.com"
export const recipient = "office@example.com"

export const tlsOptionsFor = (host: string, ca: ReadonlyArray<string> = [rootCa()]) => ({
  host,
  ...(isIP(host) === 0 ? { servername: host } : {}),
  ca: [...ca],
  minVersion: "TLSv1.2" as const,
  maxVersion: "TLSv1.3" as const,
  rejectUnauthorized: true,
})

export const policyFor = (
  server: { readonly host: string; readonly port: number },
  overrides: Partial<Transport.ConnectionPolicy> & { readonly password?: string } = {},
): Transport.ConnectionPolicy => {
  const { password, ...rest } = overrides
  return {
    endpoint: { host: server.host, port: server.port, role: "primary" },
    mode: "NONE",
    tls: tlsOptionsFor(server.host),
    credentials:
      password === undefined ? undefined : { user: "printer", password: Redacted.make(password) },
    connectionTimeoutMs: 5_000,
    commandTimeoutMs: 5_000,
    clientName: "controller.test",
    ...rest,
  }
}

export const compose = (
  overrides: Partial<Message.MailMessage> = {},
): Promise<Message.ComposedMessage> =>
  Effect.runPromise(
    Message.compose(
      { to: [recipient], subject: "Toner low", text: "Tray 2 is empty.\n", ...overrides },
      { address: sender, name: undefined, text: sender },
    ),
  )

export interface Ran<A> {
  readonly result: Result.Result<A, TransportError.TransportError>
  /** Every log message, debug included. */
  readonly logs: ReadonlyArray<string>
  readonly ms: number
}

/** Runs an effect with every log line captured. */
export const run = async <A>(
  effect: Effect.Effect<A, TransportError.TransportError>,
): Promise<Ran<A>> => {
  const logs: Array<string> = []
  const collector = Logger.make((options) => {
    const message = options.message
    logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  const started = Date.now()
  const result = await Effect.runPromise(
    Effect.result(effect).pipe(
      Effect.provide(Logger.layer([collector])),
      Effect.provideService(References.MinimumLogLevel, "All"),
    ),
  )
  return { result, logs, ms: Date.now() - started }
}

export const failure = <A>(ran: Ran<A>): TransportError.TransportError => {
  if (ran.result._tag === "Success") throw new Error("expected a failure, but it was delivered")
  return ran.result.failure
}

export const success = <A>(ran: Ran<A>): A => {
  if (ran.result._tag === "Failure") throw new Error(`expected delivery: ${ran.result.failure}`)
  return ran.result.success
}

/** Undoes dot-stuffing and drops the end-of-data line of a DATA transfer as received. */
export const unstuff = (raw: Buffer): string => {
  const text = raw.toString("latin1")
  expect(text.endsWith("\r\n.\r\n") || text === ".\r\n").toBe(true)
  const body = text === ".\r\n" ? "" : text.slice(0, -3)
  return body
    .split("\r\n")
    .map((line) => (line.startsWith(".") ? line.slice(1) : line))
    .join("\r\n")
}
