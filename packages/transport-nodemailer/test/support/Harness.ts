/**
 * Test harness: settings resolved from raw values the way a spoc.conf would
 * give them, the fixture trust store, the connection policy core's Mailer
 * would build, and a send through the nodemailer transport that captures
 * every log line (debug included) so tests can look for secrets in them.
 */
import {
  ConfigSource,
  Mailer,
  Message,
  Origin,
  type Settings,
  SettingsResolution,
  TlsPolicy,
  type Transport,
  type TransportError,
  TrustStore,
} from "@spoc-mail/core"
import { fixturePath } from "@spoc-mail/testkit"
import { Effect, Logger, Redacted, References } from "effect"
import type * as Result from "effect/Result"
import { expect } from "vitest"
import { NodemailerTransport } from "../../src/index.ts"

/** Settings from raw values, as a spoc.conf layer would give them. */
export const settingsWith = (values: Record<string, string>): Settings.MailSettings => {
  const resolution = SettingsResolution.resolve([
    {
      layer: "test",
      entries: Object.entries({
        mailserver: "127.0.0.1",
        mailfrom: "Print Room <print@example.com>",
        ...values,
      }).map(([k, v], i) => ConfigSource.entry(k, v, Origin.file("test.conf", i + 1))),
      warnings: [],
    },
  ])
  expect(resolution.problems).toEqual([])
  return resolution.settings!
}

/** The fixture root CA (or another PEM file of the fixtures) plus the system roots. */
export const trustFrom = (pem = "pki/root-ca.crt"): Promise<TrustStore.TrustStoreShape> =>
  Effect.runPromise(
    TrustStore.load({ path: fixturePath(pem), password: Redacted.make("changeit"), type: "auto" }),
  )

export interface PolicyOptions {
  readonly trust?: TrustStore.TrustStoreShape
  readonly role?: "primary" | "backup"
}

/** The connection policy core's Mailer builds for one endpoint. */
export const policyFor = async (
  server: { readonly host: string; readonly port: number },
  values: Record<string, string> = {},
  options: PolicyOptions = {},
): Promise<Transport.ConnectionPolicy> => {
  const settings = settingsWith({
    mailserver: server.host.includes(":") ? `[${server.host}]` : server.host,
    mailSmtpPort: String(server.port),
    ...values,
  })
  const trust = options.trust ?? (await trustFrom())
  const tlsPolicy = TlsPolicy.make(settings, trust)
  return Mailer.policyFor(
    settings,
    tlsPolicy,
    { host: server.host, port: server.port, role: options.role ?? "primary" },
    "client.test",
  )
}

/** A small message from the configured sender. */
export const composed = (
  message: Partial<Message.MailMessage> = {},
): Promise<Message.ComposedMessage> =>
  Effect.runPromise(
    Message.compose(
      {
        to: ["rcpt@example.com"],
        subject: "Test page",
        text: "Hello from spoc-mail\n",
        ...message,
      },
      settingsWith({}).mailfrom,
    ),
  )

/** The bytes a composed message streams. */
export const bytesOf = async (message: Message.ComposedMessage): Promise<Buffer> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of message.stream()) chunks.push(Buffer.from(chunk as Buffer))
  return Buffer.concat(chunks)
}

export interface SendOutcome {
  readonly result: Result.Result<Transport.Receipt, TransportError.TransportError>
  /** Every log line at any level, with its annotations. */
  readonly logs: ReadonlyArray<string>
  readonly ms: number
}

/** Runs an effect with every log line (debug included) captured. */
export const capturingLogs = async <A, E>(
  effect: Effect.Effect<A, E>,
): Promise<{ readonly result: Result.Result<A, E>; readonly logs: ReadonlyArray<string> }> => {
  const logs: Array<string> = []
  const logger = Logger.make<unknown, void>(({ message, logLevel, fiber }) => {
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    const annotations = JSON.stringify(fiber.getRef(References.CurrentLogAnnotations))
    logs.push(`${logLevel}: ${text} ${annotations}`)
  })
  const result = await Effect.runPromise(
    effect.pipe(
      Effect.result,
      Effect.provide(Logger.layer([logger])),
      Effect.provideService(References.MinimumLogLevel, "Trace"),
    ),
  )
  return { result, logs }
}

/** Sends through the nodemailer transport, timing it and capturing the logs. */
export const send = async (
  policy: Transport.ConnectionPolicy,
  message?: Message.ComposedMessage,
): Promise<SendOutcome> => {
  const mail = message ?? (await composed())
  const started = Date.now()
  const { result, logs } = await capturingLogs(NodemailerTransport.make().send(mail, policy))
  return { result, logs, ms: Date.now() - started }
}

/** The receipt of a send that must have succeeded. */
export const delivered = (outcome: SendOutcome): Transport.Receipt => {
  if (outcome.result._tag === "Failure") {
    throw new Error(`expected delivery, got: ${outcome.result.failure.message}`)
  }
  return outcome.result.success
}

/** The error of a send that must have failed. */
export const failed = (outcome: SendOutcome): TransportError.TransportError => {
  if (outcome.result._tag === "Success") {
    throw new Error(
      `expected a failure, got a receipt from ${outcome.result.success.endpoint.host}`,
    )
  }
  return outcome.result.failure
}
