/**
 * The nodemailer transport: sends one composed message to one endpoint with
 * nodemailer's SMTP connection, under core's `ConnectionPolicy`, and returns
 * a `Receipt` or a `TransportError`.
 *
 * The policy maps onto nodemailer as follows. NONE never sends STARTTLS, even
 * when offered. SSL_TLS is TLS from the first byte. STARTTLS upgrades when the
 * server offers it and fails when the upgrade is refused or fails, never
 * continuing in plain text; when it is not offered the message goes in plain
 * text (the Mailer logs the warning) unless credentials are set, which are
 * then never sent. STARTTLS_REQUIRED fails when STARTTLS is not offered. The
 * TLS options of the policy are passed on unchanged but for the address to
 * connect to: certificate checks are always on, against the configured name.
 *
 * The endpoint's name is resolved here with the system resolver, as
 * `net.connect` resolves it for the raw transport, and nodemailer is given
 * the address: left to itself it would ask the DNS server directly and skip
 * the hosts file (`internal/EndpointAddress.ts` says why that matters). The
 * lookup counts against the connection timeout; a name that does not resolve
 * is a `DnsFailure` in phase connect.
 *
 * Where nodemailer would do otherwise, this module decides itself: AUTH only
 * when offered and only with PLAIN or LOGIN (nodemailer would try PLAIN
 * anyway), no AUTH over a connection that stayed in plain text under
 * STARTTLS, SMTPUTF8 checked before MAIL, CR, LF or NUL in any argument
 * refused before a byte is sent. nodemailer logs only into the session's
 * recorder, never to the console; the session keeps the transcript with AUTH
 * arguments masked and it is logged here, at debug level only.
 *
 * The message bytes are the composed message's stream, as the raw transport
 * sends them. Each send opens its own connection and closes it; no
 * connection is pooled or reused.
 */
import { type Message, Transport, type TransportError } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Capabilities from "./internal/Capabilities.ts"
import * as EndpointAddress from "./internal/EndpointAddress.ts"
import { fromLookup, fromSession, nextAddressMayAnswer, refusal } from "./internal/Failures.ts"
import { Session, type SessionFailure } from "./internal/Session.ts"

/** The transport's name in receipts and logs. */
export const name = "nodemailer"

const unsafe = /[\r\n\0]/

/** Refuses CR, LF or NUL in anything that becomes part of a command. */
const checkArguments = (
  message: Message.ComposedMessage,
  policy: Transport.ConnectionPolicy,
): Effect.Effect<void, TransportError.TransportError> => {
  if (unsafe.test(policy.clientName)) {
    return Effect.fail(refusal.invalidArgument(policy, "ehlo", "the EHLO name"))
  }
  if (unsafe.test(message.envelope.from)) {
    return Effect.fail(refusal.invalidArgument(policy, "mail", "the sender address"))
  }
  if (message.envelope.to.some((address) => unsafe.test(address))) {
    return Effect.fail(refusal.invalidArgument(policy, "rcpt", "a recipient address"))
  }
  const credentials = policy.credentials
  if (credentials !== undefined && unsafe.test(credentials.user)) {
    return Effect.fail(refusal.invalidArgument(policy, "auth", "mailuser"))
  }
  if (credentials === undefined) return Effect.void
  const token = Transport.isToken(credentials)
  const secret = Redacted.value(Transport.secretOf(credentials))
  if (unsafe.test(secret)) {
    return Effect.fail(
      refusal.invalidArgument(policy, "auth", token ? "the access token" : "mailpass"),
    )
  }
  // XOAUTH2 separates its fields with 0x01: one in the user or token would move them.
  if (token && Transport.xoauth2Response(credentials) === undefined) {
    return Effect.fail(
      refusal.invalidArgument(policy, "auth", "mailuser or the access token", "a 0x01 character"),
    )
  }
  return Effect.void
}

const logTranscript = (session: Session, policy: Transport.ConnectionPolicy) =>
  Effect.forEach(session.transcript, (line) => Effect.logDebug(`${line.from}: ${line.text}`), {
    discard: true,
  }).pipe(
    Effect.annotateLogs({
      transport: name,
      endpoint: `${policy.endpoint.host}:${policy.endpoint.port}`,
    }),
  )

const send = (
  message: Message.ComposedMessage,
  policy: Transport.ConnectionPolicy,
): Effect.Effect<Transport.Receipt, TransportError.TransportError> =>
  Effect.gen(function* () {
    const started = Date.now()
    yield* checkArguments(message, policy)

    // The system resolver, not nodemailer's own DNS queries (see EndpointAddress.ts).
    const target = yield* EndpointAddress.resolve(
      policy.endpoint.host,
      policy.connectionTimeoutMs,
    ).pipe(Effect.mapError((failure) => fromLookup(failure, policy)))
    const connectBy = Date.now() + policy.connectionTimeoutMs - target.elapsedMs
    const open = (address: string) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const connectionTimeoutMs = Math.max(1, connectBy - Date.now())
          return new Session(policy, { address, connectionTimeoutMs })
        }),
        (session) => Effect.sync(() => session.close()),
      )

    let session = yield* open(target.addresses[0]!)
    const step = <A, R>(effect: Effect.Effect<A, SessionFailure, R>) =>
      Effect.mapError(effect, (failure) => fromSession(failure, policy, session))

    /**
     * Connect, greeting, EHLO, and STARTTLS when the mode asks for it; an
     * address that refuses at once hands over to the name's next address.
     */
    const connect = Effect.gen(function* () {
      for (const address of target.addresses.slice(1)) {
        const connected = yield* Effect.result(session.connect)
        if (connected._tag === "Success") return
        if (!nextAddressMayAnswer(connected.failure) || Date.now() >= connectBy) {
          return yield* Effect.fail(connected.failure)
        }
        session.close()
        session = yield* open(address)
      }
      yield* session.connect
    })

    const attempt = Effect.gen(function* () {
      yield* step(connect)
      const capabilities = Capabilities.parse(session.ehloLines)
      const tlsSocket = session.tlsSocket
      const ehlo = session.lastCommand("EHLO") ?? session.lastCommand("HELO")

      // Encryption as the policy demands it: nothing in clear that must not be.
      if (tlsSocket === undefined && policy.mode !== "NONE" && policy.mode !== "SSL_TLS") {
        if (capabilities.keywords.has("STARTTLS")) {
          return yield* refusal.startTlsUnused(policy, ehlo)
        }
        if (policy.mode === "STARTTLS_REQUIRED") {
          return yield* refusal.startTlsNotOffered(policy, ehlo)
        }
        if (policy.credentials !== undefined) {
          return yield* refusal.cleartextCredentials(policy, ehlo)
        }
      }

      // AUTH only when offered, only with a mechanism we speak (RFC 4954).
      let authenticated = false
      if (policy.credentials !== undefined) {
        const credentials = policy.credentials
        const choice = Capabilities.chooseMechanism(
          capabilities,
          Transport.mechanismsFor(credentials),
        )
        if (choice._tag === "NotOffered") return yield* refusal.authNotOffered(policy, ehlo)
        if (choice._tag === "NoneUsable") {
          return yield* refusal.noUsableMechanism(policy, ehlo, choice.offered)
        }
        yield* step(
          session.login(
            choice.mechanism,
            credentials.user,
            Redacted.value(Transport.secretOf(credentials)),
          ),
        )
        authenticated = true
      }

      // RFC 6531: a non-ASCII address needs SMTPUTF8, refused before MAIL.
      if (message.needsSmtpUtf8 && !capabilities.keywords.has("SMTPUTF8")) {
        return yield* refusal.smtpUtf8Unsupported(policy, ehlo)
      }

      const tls =
        tlsSocket === undefined
          ? undefined
          : Transport.describeTlsSocket(
              tlsSocket,
              policy.mode === "SSL_TLS" ? "SSL_TLS" : "STARTTLS",
            )
      const sent = yield* step(session.send(message.envelope, message.stream()))
      yield* session.quit

      return {
        endpoint: policy.endpoint,
        transport: name,
        messageId: message.messageId,
        accepted: [...sent.accepted],
        rejected: sent.rejected.map((address) => ({
          address,
          reply: sent.rejectedErrors?.find((error) => error.recipient === address)?.response ?? "",
        })),
        response: sent.response,
        tls,
        authenticated,
        durationMs: Date.now() - started,
      } satisfies Transport.Receipt
    })

    return yield* attempt.pipe(
      // A session that failed with its connection still open says QUIT; it is never reused.
      Effect.tapError(() => session.quit),
      Effect.onExit(() => logTranscript(session, policy)),
    )
  }).pipe(Effect.scoped)

/** Builds the nodemailer transport. */
export const make = (): Transport.TransportShape => ({ name, send })

/** Provides core's `Transport` service with the nodemailer transport. */
export const layer: Layer.Layer<Transport.Transport> = Layer.succeed(Transport.Transport, make())
