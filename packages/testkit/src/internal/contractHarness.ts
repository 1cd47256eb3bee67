/**
 * The machinery behind the Transport and Delivery contract suites: settings
 * built the way the application builds them (one in-memory layer through
 * core's settings resolution), the trust store and TLS policy from those
 * settings, a send straight through the transport or through the Mailer, log
 * capture with an Effect logger, and scripts for the usual SMTP dialogue.
 *
 * It also runs the secret search both suites share: `watchSecrets` makes
 * every case of a describe block run at one minimum log level and capture
 * everything the case shows (Effect logs with their annotations and causes,
 * whatever is written to stdout, stderr or the console, process warnings,
 * and every error and receipt a send returns, as `message`, `String`,
 * `JSON.stringify` and `util.inspect`, `cause` included); the case fails
 * when any form of the contract's secrets appears in it.
 *
 * It holds no assertions about SMTP behaviour; the contract modules do.
 */
import { X509Certificate } from "node:crypto"
import * as net from "node:net"
import { format, inspect } from "node:util"
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
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import type * as Result from "effect/Result"
import { afterEach, beforeEach, expect } from "vitest"
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

/**
 * Runs an effect with its logs captured. Inside a case of a `watchSecrets`
 * block it logs at that block's level and everything it logs and returns is
 * searched for secrets; elsewhere every level is captured (transcripts at
 * debug included).
 */
export const runLogged = async <A, E>(
  effect: Effect.Effect<A, E>,
): Promise<{ readonly result: Result.Result<A, E>; readonly logs: ReadonlyArray<LogEvent> }> => {
  const capture = current
  const logs: Array<LogEvent> = []
  const logger = Logger.make<unknown, void>((options) => {
    const annotations = { ...options.fiber.getRef(References.CurrentLogAnnotations) }
    logs.push({ level: options.logLevel, text: textOf(options.message), annotations })
    capture?.shown(`log ${options.logLevel}`, [
      Logger.formatLogFmt.log(options),
      ...(Array.isArray(options.message) ? options.message : [options.message]).map(showAll),
      showAll(annotations),
      options.cause.reasons.length > 0 ? Cause.pretty(options.cause) : "",
    ])
  })
  const level = capture === undefined ? "All" : capture.level
  const logged = Effect.result(effect).pipe(Effect.provide(Logger.layer([logger])))
  const result = await Effect.runPromise(
    level === "Default"
      ? logged
      : logged.pipe(Effect.provideService(References.MinimumLogLevel, level)),
  )
  capture?.shown(
    result._tag === "Success" ? "receipt" : "error",
    result._tag === "Success" ? visibleForms(result.success) : visibleForms(result.failure),
  )
  return { result, logs }
}

// ---------------------------------------------------------------------------------------------
// The secret search

/** The user and password every contract case that authenticates uses. */
export const credentials = { user: "printer", password: "p€ss" } as const

/**
 * A bearer token: the access token of the XOAUTH2 cases, and planted where
 * a settings secret could leak from in every other case: the trust store
 * password (a PEM trust store never needs it; JKS and PKCS12 cases set their own).
 */
export const bearerToken = "spoc-contract-token.eyJzdWIiOiJwcmludGVyIn0.c2lnbmVk"

/** The minimum log level a case runs at: `Default` is Effect's own (Info). */
export type CaseLogLevel = Extract<LogLevel.LogLevel, "All" | "Trace" | "Debug"> | "Default"

/** The levels both contracts run every case at unless told otherwise. */
export const caseLogLevels: ReadonlyArray<CaseLogLevel> = ["Debug", "Default"]

const base64 = (text: string): string => Buffer.from(text, "utf8").toString("base64")

/** Every form in which the contract's secrets must never be shown, by name. */
export const namedSecretForms = (
  user: string = credentials.user,
  password: string = credentials.password,
): ReadonlyArray<{ readonly name: string; readonly form: string }> => [
  { name: "the password", form: password },
  { name: "the password in base64 (the AUTH LOGIN answer)", form: base64(password) },
  { name: "the AUTH PLAIN blob", form: base64(`\0${user}\0${password}`) },
  { name: "the user in base64 (the AUTH LOGIN answer)", form: base64(user) },
  { name: "the bearer token", form: bearerToken },
  {
    name: "the AUTH XOAUTH2 blob",
    form: base64(`user=${user}\u0001auth=Bearer ${bearerToken}\u0001\u0001`),
  },
]

/** What one case showed, at the level it ran. */
class CaseCapture {
  readonly seen: Array<{ readonly where: string; readonly text: string }> = []
  constructor(readonly level: CaseLogLevel) {}

  shown(where: string, texts: ReadonlyArray<string>): void {
    for (const text of texts) if (text !== "") this.seen.push({ where, text })
  }
}

let current: CaseCapture | undefined

/** Any value as a person or a log could see it: its string, JSON and inspection. */
const showAll = (value: unknown): string => {
  if (typeof value === "string") return value
  return [String(value), safeJson(value), inspect(value, { depth: 8, getters: false })].join("\n")
}

const safeJson = (value: unknown): string => {
  const seen = new WeakSet<object>()
  try {
    return (
      JSON.stringify(value, (_key, field: unknown) => {
        if (typeof field === "object" && field !== null) {
          if (seen.has(field)) return "[circular]"
          seen.add(field)
        }
        return typeof field === "bigint" ? String(field) : field
      }) ?? ""
    )
  } catch (error) {
    return `[JSON.stringify threw: ${String(error)}]`
  }
}

/**
 * An error or a receipt in every form it can be shown, and the same for each
 * error it wraps (`cause`, a delivery's attempts and last error).
 */
export const visibleForms = (value: unknown): ReadonlyArray<string> => {
  const forms: Array<string> = []
  const seen = new Set<unknown>()
  const visit = (item: unknown, depth: number): void => {
    if (item === undefined || item === null || seen.has(item) || depth > 6) return
    seen.add(item)
    forms.push(showAll(item))
    if (typeof item !== "object") return
    const fields = item as {
      message?: unknown
      cause?: unknown
      attempts?: unknown
      last?: unknown
      error?: unknown
    }
    if (typeof fields.message === "string") forms.push(fields.message)
    visit(fields.cause, depth + 1)
    visit(fields.last, depth + 1)
    visit(fields.error, depth + 1)
    if (Array.isArray(fields.attempts)) for (const a of fields.attempts) visit(a, depth + 1)
  }
  visit(value, 0)
  return forms
}

type Writer = typeof process.stdout.write
const consoleMethods = ["log", "info", "warn", "error", "debug", "trace", "dir"] as const

/** Records everything written to stdout, stderr, the console and process warnings. */
const tapOutput = (capture: CaseCapture): (() => void) => {
  const restore: Array<() => void> = []
  for (const [where, stream] of [
    ["stdout", process.stdout],
    ["stderr", process.stderr],
  ] as const) {
    const original = stream.write
    stream.write = function (this: unknown, chunk: unknown, ...rest: Array<unknown>) {
      capture.shown(where, [
        Buffer.isBuffer(chunk) || chunk instanceof Uint8Array
          ? Buffer.from(chunk).toString("utf8")
          : String(chunk),
      ])
      return (original as (...args: Array<unknown>) => boolean).call(stream, chunk, ...rest)
    } as Writer
    restore.push(() => {
      stream.write = original
    })
  }
  for (const method of consoleMethods) {
    const original = console[method]
    console[method] = (...args: Array<unknown>) => {
      capture.shown(`console.${method}`, [format(...args), ...args.map(showAll)])
      ;(original as (...args: Array<unknown>) => void).apply(console, args)
    }
    restore.push(() => {
      console[method] = original
    })
  }
  const onWarning = (warning: Error) => capture.shown("process warning", [showAll(warning)])
  process.on("warning", onWarning)
  restore.push(() => process.off("warning", onWarning))
  return () => {
    for (const undo of restore.reverse()) undo()
  }
}

/** Where a secret showed, with the secret itself replaced by its name. */
const findings = (capture: CaseCapture): Array<string> => {
  const found: Array<string> = []
  const forms = namedSecretForms()
  for (const { where, text } of capture.seen) {
    const hits = forms.filter(({ form }) => text.includes(form))
    if (hits.length === 0) continue
    let shown = text
    for (const { name, form } of hits) shown = shown.split(form).join(`<${name}>`)
    found.push(`${hits.map((h) => h.name).join(", ")} in ${where}: ${shown.slice(0, 400)}`)
  }
  return found
}

/** The capture of the case running now; `stop` ends it and says where a secret showed. */
export interface SecretCapture {
  readonly level: CaseLogLevel
  /** Stops capturing; one line per place a secret showed, the secret replaced by its name. */
  readonly stop: () => ReadonlyArray<string>
}

/**
 * Starts capturing what a case shows: sends through `runLogged` log at
 * `level`, and their logs, errors and receipts, stdout, stderr, the console
 * and process warnings are kept until `stop`.
 */
export const captureCase = (level: CaseLogLevel): SecretCapture => {
  const capture = new CaseCapture(level)
  current = capture
  const untap = tapOutput(capture)
  let stopped = false
  return {
    level,
    stop: () => {
      if (!stopped) {
        stopped = true
        untap()
        if (current === capture) current = undefined
      }
      return findings(capture)
    },
  }
}

/**
 * Makes every case of the enclosing describe block run its sends at `level`
 * and capture everything it shows; a case in which any form of the
 * contract's secrets appears fails, naming the form and where it appeared.
 */
export const watchSecrets = (level: CaseLogLevel): void => {
  let capture: SecretCapture | undefined
  beforeEach(() => {
    capture = captureCase(level)
  })
  afterEach(() => {
    const found = capture?.stop() ?? []
    capture = undefined
    expect(found, `secrets shown by a case run at log level ${level}`).toEqual([])
  })
}

/** The minimum log level of the case running now, if it runs under `watchSecrets`. */
export const currentLogLevel = (): CaseLogLevel | undefined => current?.level

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
  trustStorePassword: bearerToken,
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
  /** The message as the Mailer got it: its Message-ID is in the events. */
  readonly composed: Message.ComposedMessage
  readonly elapsedMs: number
}

/** Sends through the Mailer: primary, then backup, with its events logged. */
export const sendViaMailer = async (
  transport: Transport.TransportShape,
  settings: Settings.MailSettings,
  mail: Message.MailMessage = message,
  options: Mailer.MailerOptions = {},
): Promise<MailerSend> => {
  const policy = await tlsPolicyOf(settings)
  const composed = await Effect.runPromise(Message.compose(mail, settings.mailfrom))
  const mailer = Mailer.make(settings, transport, policy, {
    clientName,
    deadlineMs: 60_000,
    ...options,
  })
  const started = Date.now()
  const { result, logs } = await runLogged(mailer.sendComposed(composed))
  return { result, logs, composed, elapsedMs: Date.now() - started }
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

/**
 * Starts a backup on 127.0.0.2 and then a primary on 127.0.0.1 with the same
 * port (a backup shares the primary's port), trying again with another port
 * when the backup's was free on 127.0.0.2 but taken on 127.0.0.1.
 */
export const pair = async <
  P,
  B extends { readonly port: number; readonly close: () => Promise<void> },
>(
  startBackup: () => Promise<B>,
  startPrimary: (port: number) => Promise<P>,
): Promise<{ readonly primary: P; readonly backup: B; readonly port: number }> => {
  for (let tries = 0; ; tries++) {
    const backup = await startBackup()
    try {
      const primary = await startPrimary(backup.port)
      return { primary, backup, port: backup.port }
    } catch (cause) {
      await backup.close()
      if (tries >= 4) throw cause
    }
  }
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

/** The forms a secret could leak in: as is, base64, inside AUTH PLAIN's base64, the token. */
export const secretForms = (user: string, password: string): ReadonlyArray<string> =>
  namedSecretForms(user, password).map(({ form }) => form)

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
