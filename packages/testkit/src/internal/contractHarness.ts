/**
 * The machinery behind the Transport contract suite: settings built the way
 * the application builds them (one in-memory layer through core's settings
 * resolution), the trust store and TLS policy from those settings, a send
 * straight through the transport or through the Mailer, log capture with an
 * Effect logger, and scripts for the usual SMTP dialogue.
 *
 * It holds no assertions about SMTP behaviour; `TransportContract.ts` does.
 */
import { X509Certificate } from "node:crypto"
import * as net from "node:net"
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
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import type * as Result from "effect/Result"
import { type CertificateChoice, fixturePath, readFixture } from "../Fixtures.ts"
import * as Script from "../ScriptedSmtpServer.ts"

/** The EHLO name the contract sends with. */
export const clientName = "controller.test"

export const sender = "Print Room <print@example.com>"
export const recipient = "rcpt@example.com"

/** The message most cases send. */
export const message: Message.MailMessage = {
  to: [recipient],
  subject: "spoc-mail transport contract",
  text: "Hello from the transport contract.\n",
}

/** One log event, as an Effect logger saw it. */
export interface LogEvent {
  readonly level: string
  readonly text: string
  readonly annotations: Readonly<Record<string, unknown>>
}

const textOf = (message: unknown): string =>
  Array.isArray(message) ? message.map(String).join(" ") : String(message)

/** Runs an effect with every log level captured (transcripts at debug included). */
export const runLogged = async <A, E>(
  effect: Effect.Effect<A, E>,
): Promise<{ readonly result: Result.Result<A, E>; readonly logs: ReadonlyArray<LogEvent> }> => {
  const logs: Array<LogEvent> = []
  const logger = Logger.make<unknown, void>(({ message, logLevel, fiber }) => {
    logs.push({
      level: logLevel,
      text: textOf(message),
      annotations: { ...fiber.getRef(References.CurrentLogAnnotations) },
    })
  })
  const result = await Effect.runPromise(
    Effect.result(effect).pipe(
      Effect.provide(Logger.layer([logger])),
      Effect.provideService(References.MinimumLogLevel, "All"),
    ),
  )
  return { result, logs }
}

/** `mailserver` for a host: IPv6 in brackets. */
export const serverSetting = (host: string): string => (net.isIPv6(host) ? `[${host}]` : host)

/** Settings values for one server; `extra` adds or overrides keys (`""` leaves a key unset). */
export const values = (
  server: { readonly host: string; readonly port: number },
  mode: Settings.EncryptionMode,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> => ({
  mailserver: serverSetting(server.host),
  mailfrom: sender,
  mailSmtpEncryption: mode,
  mailSmtpPort: String(server.port),
  mailSmtpConnectionTimeout: "10000",
  mailSmtpTimeout: "10000",
  trustStorePath: fixturePath("pki/root-ca.crt"),
  ...extra,
})

/** Resolves settings from one in-memory layer, as the application resolves its layers. */
export const resolve = (
  settings: Readonly<Record<string, string>>,
): SettingsResolution.Resolution =>
  SettingsResolution.resolve(
    [
      {
        layer: "contract",
        entries: Object.entries(settings)
          .filter(([, raw]) => raw !== "")
          .map(([key, raw]) =>
            ConfigSource.entry(key, raw, Origin.program(`transport contract (${key})`)),
          ),
        warnings: [],
      },
    ],
    // No default trust store from the working folder: only what the case says.
    { exists: () => false },
  )

/** The settings of a layer that must resolve; throws every problem otherwise. */
export const settingsOf = (settings: Readonly<Record<string, string>>): Settings.MailSettings => {
  const resolution = resolve(settings)
  if (resolution.settings === undefined) {
    throw new Error(
      "transport contract: the case's settings do not resolve:\n" +
        resolution.problems.map(SettingsResolution.formatProblem).join("\n"),
    )
  }
  return resolution.settings
}

/** The trust store and TLS policy the settings describe. */
export const tlsPolicyOf = async (
  settings: Settings.MailSettings,
): Promise<TlsPolicy.TlsPolicyShape> => {
  const trust = await Effect.runPromise(TrustStore.load(settings.trustStore))
  return TlsPolicy.make(settings, trust)
}

export interface DirectSend {
  readonly result: Result.Result<Transport.Receipt, TransportError.TransportError>
  readonly logs: ReadonlyArray<LogEvent>
  readonly composed: Message.ComposedMessage
  readonly elapsedMs: number
}

/** Sends once to the primary endpoint straight through the transport. */
export const sendDirect = async (
  transport: Transport.TransportShape,
  settings: Settings.MailSettings,
  mail: Message.MailMessage = message,
): Promise<DirectSend> => {
  const policy = await tlsPolicyOf(settings)
  const composed = await Effect.runPromise(Message.compose(mail, settings.mailfrom))
  const endpoint = Mailer.endpointsOf(settings)[0]!
  const connection = Mailer.policyFor(settings, policy, endpoint, clientName)
  const started = Date.now()
  const { result, logs } = await runLogged(transport.send(composed, connection))
  return { result, logs, composed, elapsedMs: Date.now() - started }
}

export interface MailerSend {
  readonly result: Result.Result<
    Mailer.DeliveryReceipt,
    Mailer.DeliveryError | Message.MessageError
  >
  readonly logs: ReadonlyArray<LogEvent>
  readonly elapsedMs: number
}

/** Sends through the Mailer: primary, then backup, with its events logged. */
export const sendViaMailer = async (
  transport: Transport.TransportShape,
  settings: Settings.MailSettings,
  mail: Message.MailMessage = message,
): Promise<MailerSend> => {
  const policy = await tlsPolicyOf(settings)
  const mailer = Mailer.make(settings, transport, policy, { clientName, deadlineMs: 60_000 })
  const started = Date.now()
  const { result, logs } = await runLogged(mailer.send(mail))
  return { result, logs, elapsedMs: Date.now() - started }
}

/** The SHA-256 fingerprint of a fixture certificate, as receipts report it. */
export const fingerprintOf = (fixture: string): string =>
  new X509Certificate(readFixture(fixture)).fingerprint256

/** A port on 127.0.0.1 that nothing listens on right now. */
export const closedPort = async (host = "127.0.0.1", port = 0): Promise<number> => {
  const probe = net.createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject)
    probe.listen(port, host, () => resolve())
  })
  const address = probe.address() as net.AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return address.port
}

/** An EHLO reply: the server name, then each capability, with dashes on all but the last. */
export const ehloReply = (capabilities: ReadonlyArray<string>): string => {
  const all = ["smtp.test", ...capabilities]
  return Script.lines(...all.map((line, i) => `250${i === all.length - 1 ? " " : "-"}${line}`))
}

export const greeting = "220 smtp.test ESMTP spoc-mail contract\r\n"
export const queued = "250 2.0.0 Ok: queued as C0FFEE\r\n"

/** MAIL, one RCPT, DATA, the message and QUIT, all accepted. */
export const deliverySteps: ReadonlyArray<Script.Step> = [
  Script.expect(/^MAIL FROM:/i, "250 2.1.0 Ok\r\n"),
  Script.expect(/^RCPT TO:/i, "250 2.1.5 Ok\r\n"),
  Script.expect(/^DATA$/i, "354 End data with <CR><LF>.<CR><LF>\r\n"),
  Script.data(queued),
  Script.expect(/^QUIT/i, "221 2.0.0 Bye\r\n"),
  Script.close(),
]

export interface DialogueOptions {
  /** Capabilities of the first EHLO reply. */
  readonly ehlo: ReadonlyArray<string>
  /** STARTTLS accepted with this certificate, then the capabilities of the second EHLO. */
  readonly starttls?: {
    readonly certificate?: CertificateChoice
    readonly ehlo: ReadonlyArray<string>
  }
  /** Steps after the last EHLO (AUTH), before MAIL. */
  readonly auth?: ReadonlyArray<Script.Step>
  /** Steps after the last EHLO and AUTH; default a whole accepted delivery. */
  readonly then?: ReadonlyArray<Script.Step>
}

/** The usual dialogue: greeting, EHLO, optional STARTTLS and second EHLO, AUTH, delivery. */
export const dialogue = (options: DialogueOptions): ReadonlyArray<Script.Step> => [
  Script.send(greeting),
  Script.expect(/^EHLO /i, ehloReply(options.ehlo)),
  ...(options.starttls === undefined
    ? []
    : [
        Script.expect(/^STARTTLS$/i, "220 2.0.0 Ready to start TLS\r\n"),
        Script.startTls({ certificate: options.starttls.certificate ?? "server" }),
        Script.expect(/^EHLO /i, ehloReply(options.starttls.ehlo)),
      ]),
  ...(options.auth ?? []),
  ...(options.then ?? deliverySteps),
]

/** The AUTH LOGIN dialogue of RFC 4954's examples, accepting any answers. */
export const authLoginSteps = (outcome = "235 2.7.0 Authentication successful\r\n") => [
  Script.expect(/^AUTH LOGIN$/i, "334 VXNlcm5hbWU6\r\n"),
  Script.expect(/^/, "334 UGFzc3dvcmQ6\r\n"),
  Script.expect(/^/, outcome),
]

/** The forms a secret could leak in: as is, base64, and inside AUTH PLAIN's base64. */
export const secretForms = (user: string, password: string): ReadonlyArray<string> => [
  password,
  Buffer.from(password, "utf8").toString("base64"),
  Buffer.from(`\0${user}\0${password}`, "utf8").toString("base64"),
]

/** Everything a person or a log could see of an error: message, fields and its JSON. */
export const visibleText = (error: TransportError.TransportError): string =>
  [
    error.message,
    error.detail,
    error.command ?? "",
    error.serverText ?? "",
    error.hint ?? "",
    String(error),
  ].join("\n")
