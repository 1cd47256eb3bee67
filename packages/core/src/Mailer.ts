/**
 * The delivery policy on top of a transport: builds the endpoints (the
 * primary, then the backup with the same port, mode and credentials),
 * composes the message once, tries each endpoint in turn and moves to the
 * backup only on the failures where that is safe (DESIGN "Delivery policy"):
 * never after the server rejected the credentials (lockouts), never on a
 * permanent 5xx for the message, and never once the final dot was sent
 * (the outcome is unknown; resending could deliver twice).
 *
 * Logging in with an OAuth 2.0 access token (XOAUTH2) is for programs that
 * assemble their own controller: settings carry a password only, so the
 * token comes from a provider in the options, asked once per send, for the
 * user `mailuser` names. A provider that fails ends the send before any
 * connection (`TokenUnavailable`); the backup would need the same token.
 *
 * The whole send has an overall deadline. Every attempt is reported in the
 * receipt or the error. Failover, plaintext delivery and outcome-unknown are
 * logged as events a person acts on.
 */
import { hostname } from "node:os"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import { type ComposedMessage, compose, type MailMessage, type MessageError } from "./Message.ts"
import type { MailSettings } from "./Settings.ts"
import { TlsPolicy, type TlsPolicyShape } from "./TlsPolicy.ts"
import {
  type ConnectionPolicy,
  type Credentials,
  type Receipt,
  Transport,
  type TransportShape,
} from "./Transport.ts"
import {
  type Endpoint,
  formatEndpoint,
  type Phase,
  TransportError,
  type TransportFailure,
} from "./TransportError.ts"
import { explainVersionMismatch } from "./TransportFailures.ts"

export interface Attempt {
  readonly endpoint: Endpoint
  readonly transport: string
  readonly outcome: "delivered" | "failed"
  readonly durationMs: number
  /** Present when the attempt failed. */
  readonly error?: TransportError
}

export interface DeliveryReceipt extends Receipt {
  /** Every attempt, in order; the last one delivered. */
  readonly attempts: ReadonlyArray<Attempt>
}

/** No endpoint delivered the message; `attempts` says what each one did. */
export class DeliveryError extends Data.TaggedError("DeliveryError")<{
  readonly attempts: ReadonlyArray<Attempt>
  /** The failure that ended the send. */
  readonly last: TransportError
}> {
  override get message(): string {
    if (this.attempts.length <= 1) return this.last.message
    return this.attempts
      .map((a, i) => `attempt ${i + 1} (${a.endpoint.role}): ${a.error?.message ?? a.outcome}`)
      .join("\n")
  }
}

export interface MailerShape {
  /** Composes the message once, then delivers it. */
  readonly send: (
    message: MailMessage,
  ) => Effect.Effect<DeliveryReceipt, DeliveryError | MessageError>
  /** Delivers a message composed beforehand (an .eml file, a message sent twice). */
  readonly sendComposed: (
    composed: ComposedMessage,
  ) => Effect.Effect<DeliveryReceipt, DeliveryError>
}

export interface MailerOptions {
  /** The whole send, every attempt included; default five minutes. */
  readonly deadlineMs?: number
  /** The name sent with EHLO; default this machine's host name when it is a valid one. */
  readonly clientName?: string
  /**
   * Logs in with AUTH XOAUTH2 and this OAuth 2.0 access token instead of
   * `mailpass`, as the user `mailuser` names. Asked once per send, so a
   * provider may renew an expired token; its errors are reported by name
   * only, never by message, since a message could hold the token.
   */
  readonly accessToken?: Effect.Effect<Redacted.Redacted<string>, unknown>
}

export class Mailer extends Context.Service<Mailer, MailerShape>()("@spoc-mail/core/Mailer") {
  static readonly layer = (
    settings: MailSettings,
    options: MailerOptions = {},
  ): Layer.Layer<Mailer, never, Transport | TlsPolicy> =>
    Layer.effect(
      Mailer,
      Effect.gen(function* () {
        const transport = yield* Transport
        const tlsPolicy = yield* TlsPolicy
        return make(settings, transport, tlsPolicy, options)
      }),
    )
}

const backupAlways: ReadonlySet<TransportFailure> = new Set<TransportFailure>([
  "DnsFailure",
  "ConnectionRefused",
  "Unreachable",
  "ConnectTimeout",
  "GreetingTimeout",
  "GreetingRejected",
  "ConnectionLost",
  "PlaintextWhereTlsExpected",
  "TlsHandshakeFailed",
  "TlsVersionMismatch",
  "NoSharedCipher",
  "CertificateUntrusted",
  "CertificateExpired",
  "HostnameMismatch",
  "WeakParameters",
  "StartTlsRefused",
  "StartTlsNotOffered",
  "CleartextCredentials",
  "AuthNotOffered",
  "NoUsableAuthMechanism",
  "SmtpUtf8Unsupported",
  "CommandTimeout",
  "ProtocolViolation",
])

const backupWhenTemporary: ReadonlySet<TransportFailure> = new Set<TransportFailure>([
  "SenderRejected",
  "RecipientsRejected",
  "MessageRejected",
  "MessageTooLarge",
])

/**
 * Whether a failure may move to the backup server (DESIGN "Delivery policy").
 * AuthRejected, permanent rejections, OutcomeUnknown, InvalidArgument and
 * DeadlineExceeded stay where they are.
 */
export const movesToBackup = (error: TransportError): boolean =>
  backupAlways.has(error.reason) || (backupWhenTemporary.has(error.reason) && error.transient)

const label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
const validHostname = new RegExp(`^(?=.{1,253}$)${label}(?:\\.${label})*$`)

/** The EHLO name: this host's name when valid, else an address literal. */
export const defaultClientName = (): string => {
  const name = hostname()
  return validHostname.test(name) ? name : "[127.0.0.1]"
}

/** The endpoints a send tries, in order. */
export const endpointsOf = (settings: MailSettings): ReadonlyArray<Endpoint> => [
  { host: settings.mailserver.host, port: settings.port, role: "primary" },
  ...(settings.mailserverbackup === undefined
    ? []
    : [{ host: settings.mailserverbackup.host, port: settings.port, role: "backup" as const }]),
]

/**
 * The connection policy for one endpoint; `credentials` replaces the
 * settings' user and password (an access token for XOAUTH2).
 */
export const policyFor = (
  settings: MailSettings,
  tlsPolicy: TlsPolicyShape,
  endpoint: Endpoint,
  clientName: string,
  credentials: Credentials | undefined = settings.credentials,
): ConnectionPolicy => ({
  endpoint,
  mode: settings.encryption,
  tls: tlsPolicy.optionsFor(endpoint.host),
  credentials,
  connectionTimeoutMs: settings.connectionTimeoutMs,
  commandTimeoutMs: settings.commandTimeoutMs,
  clientName,
})

/**
 * The deadline passed. The Mailer does not know how far a transport got in
 * the attempt it stopped, so the phase is the one it started in, and the hint
 * says the message may have arrived when that attempt was under way.
 */
const deadlineError = (
  endpoint: Endpoint,
  phase: Phase,
  deadlineMs: number,
  stoppedAttempt: boolean,
): TransportError =>
  new TransportError({
    reason: "DeadlineExceeded",
    phase,
    endpoint,
    detail:
      `the send did not finish within its overall deadline of ${deadlineMs} ms` +
      (stoppedAttempt ? `; the attempt to ${formatEndpoint(endpoint)} was stopped` : ""),
    hint:
      "check the servers' health, or raise the deadline for very large messages" +
      (stoppedAttempt
        ? "; if the message was being transferred when it was stopped, it may have been " +
          "delivered: look for its Message-ID in the server's log before sending it again"
        : ""),
  })

/** Why the access token provider gave no token: by the error's name, never its message. */
const tokenError = (endpoint: Endpoint, detail: string): TransportError =>
  new TransportError({
    reason: "TokenUnavailable",
    phase: "auth",
    endpoint,
    detail: `${detail}; no connection was made, nothing was sent`,
    hint:
      "check the OAuth 2.0 token provider given to the Mailer as accessToken " +
      "(its credentials, its network, the token's scope)",
  })

/** The credentials of one send: the settings' password, or the user with a fresh token. */
const credentialsOf = (
  settings: MailSettings,
  accessToken: MailerOptions["accessToken"],
  endpoint: Endpoint,
): Effect.Effect<Credentials | undefined, TransportError> => {
  if (accessToken === undefined) return Effect.succeed(settings.credentials)
  const user = settings.credentials?.user
  if (user === undefined) {
    return Effect.fail(
      new TransportError({
        reason: "InvalidArgument",
        phase: "config",
        endpoint,
        detail: "an access token provider is set, but mailuser is empty; nothing was sent",
        hint: "set mailuser to the account the token was issued for: XOAUTH2 sends both",
      }),
    )
  }
  const failed = (cause: unknown) =>
    Effect.fail(tokenError(endpoint, `the access token provider failed (${errorName(cause)})`))
  return accessToken.pipe(
    Effect.map((token): Credentials => ({ user, accessToken: token })),
    Effect.catch(failed),
    // A provider that throws is reported the same way: its message could hold the token.
    Effect.catchDefect(failed),
  )
}

/**
 * An error by its tag or class name, and the name of what it wraps
 * (`UnknownError from OAuthRefreshError`), never by its message.
 */
const errorName = (cause: unknown, depth = 0): string => {
  if (typeof cause !== "object" || cause === null) return typeof cause
  const tag = (cause as { readonly _tag?: unknown })._tag
  const name = typeof tag === "string" ? tag : cause instanceof Error ? cause.name : "object"
  const inner = (cause as { readonly cause?: unknown }).cause
  return inner === undefined || depth > 2 ? name : `${name} from ${errorName(inner, depth + 1)}`
}

export const make = (
  settings: MailSettings,
  transport: TransportShape,
  tlsPolicy: TlsPolicyShape,
  options: MailerOptions = {},
): MailerShape => {
  const deadlineMs = options.deadlineMs ?? 300_000
  const clientName = options.clientName ?? defaultClientName()
  const endpoints = endpointsOf(settings)

  const sendComposed = (composed: ComposedMessage) =>
    Effect.gen(function* () {
      const attempts: Array<Attempt> = []
      // The attempt under way, so that one cut short by the deadline is reported too.
      let inFlight: { readonly endpoint: Endpoint; readonly started: number } | undefined

      // True while the access token provider is asked, so that a deadline blames it.
      let awaitingToken = false

      const tryEndpoints = Effect.gen(function* () {
        awaitingToken = true
        const credentials = yield* credentialsOf(settings, options.accessToken, endpoints[0]!).pipe(
          Effect.mapError((last) => new DeliveryError({ attempts: [], last })),
        )
        awaitingToken = false
        for (const [index, endpoint] of endpoints.entries()) {
          const started = Date.now()
          const policy = policyFor(settings, tlsPolicy, endpoint, clientName, credentials)
          inFlight = { endpoint, started }
          const result = yield* Effect.result(transport.send(composed, policy))
          inFlight = undefined
          const durationMs = Date.now() - started

          if (result._tag === "Success") {
            attempts.push({ endpoint, transport: transport.name, outcome: "delivered", durationMs })
            return result.success
          }

          // The transport cannot know that the custom cipher list removed TLS versions.
          const error = explainVersionMismatch(result.failure, tlsPolicy.removedByCipherList)
          attempts.push({
            endpoint,
            transport: transport.name,
            outcome: "failed",
            durationMs,
            error,
          })
          const next = endpoints[index + 1]
          if (error.reason === "OutcomeUnknown") {
            yield* Effect.logError(
              "outcome unknown: the message may or may not have been " +
                "delivered; it is not resent automatically",
            ).pipe(
              Effect.annotateLogs({
                event: "outcome-unknown",
                endpoint: formatEndpoint(endpoint),
                phase: error.phase,
              }),
            )
          }
          if (next === undefined || !movesToBackup(error)) {
            return yield* new DeliveryError({ attempts: [...attempts], last: error })
          }
          yield* Effect.logWarning(
            `${formatEndpoint(endpoint)} failed (${error.reason}); trying the backup ` +
              formatEndpoint(next),
          ).pipe(
            Effect.annotateLogs({
              event: "failover",
              endpoint: formatEndpoint(endpoint),
              phase: error.phase,
              reason: error.reason,
            }),
          )
        }
        return yield* Effect.die("no endpoint to try")
      })

      const receipt = yield* tryEndpoints.pipe(
        Effect.timeoutOrElse({
          duration: deadlineMs,
          orElse: () =>
            Effect.suspend(() => {
              if (awaitingToken) {
                const detail =
                  "the access token provider gave no token within the send's overall " +
                  `deadline of ${deadlineMs} ms`
                const last = tokenError(endpoints[0]!, detail)
                return Effect.fail(new DeliveryError({ attempts: [], last }))
              }
              const cut = inFlight
              const endpoint = cut?.endpoint ?? attempts[attempts.length - 1]?.endpoint
              const last = deadlineError(
                endpoint ?? endpoints[0]!,
                "connect",
                deadlineMs,
                cut !== undefined,
              )
              if (cut !== undefined) {
                attempts.push({
                  endpoint: cut.endpoint,
                  transport: transport.name,
                  outcome: "failed",
                  durationMs: Date.now() - cut.started,
                  error: last,
                })
              }
              return Effect.fail(new DeliveryError({ attempts: [...attempts], last }))
            }),
        }),
      )

      if (receipt.tls === undefined && settings.encryption !== "NONE") {
        yield* Effect.logWarning(
          `sent without encryption: ${formatEndpoint(receipt.endpoint)} did not offer STARTTLS`,
        ).pipe(
          Effect.annotateLogs({ event: "plaintext", endpoint: formatEndpoint(receipt.endpoint) }),
        )
      }
      yield* Effect.logInfo(`delivered ${composed.messageId}`).pipe(
        Effect.annotateLogs({
          event: "delivered",
          endpoint: formatEndpoint(receipt.endpoint),
        }),
      )
      return { ...receipt, attempts } satisfies DeliveryReceipt
    }).pipe(
      Effect.tapError((error) =>
        Effect.logInfo(`delivery failed: ${error.last.reason}`).pipe(
          Effect.annotateLogs({
            event: "failed",
            endpoint: formatEndpoint(error.last.endpoint),
            phase: error.last.phase,
            reason: error.last.reason,
          }),
        ),
      ),
      // Every event (and the transport's transcript) names the message it is about.
      Effect.annotateLogs({ messageId: composed.messageId }),
    )

  const send = (message: MailMessage) =>
    Effect.flatMap(compose(message, settings.mailfrom), sendComposed)

  return { send, sendComposed }
}
