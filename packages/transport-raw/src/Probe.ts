/**
 * Probing a mail server: what `spoc-mail probe` reports. It connects to one
 * host and port and follows each stage as a send would (TCP connect and its
 * time, the greeting or its absence, EHLO capabilities before and after TLS,
 * STARTTLS, the negotiated version and cipher, the chain the server presents
 * and whether it verifies against the trust store, the AUTH mechanisms
 * offered), says whether the mode being checked works, and when it does
 * not, finds what does.
 *
 * The search follows the spooler controller's reference: SSL_TLS first,
 * STARTTLS next, on the given port; when the port works with neither, SSL_TLS
 * on 465 and STARTTLS on 587 of the same host (one whose chain verifies
 * first). When no TLS works at all but the port greets in plain text, NONE is
 * recommended only if NONE is the mode checked, said plainly to be
 * unencrypted; an encrypted mode checked gets no recommendation but what to
 * do (TLS on the server, or its TLS ports), never a downgrade. A mode whose
 * chain does not verify is recommended as spoken there, never as working,
 * with how to get the certificate accepted. Nothing the report showed failing
 * is recommended, in the recommendation or in a failure's hint: a port silent
 * in both modes is named as such, with the host and port to check. The
 * search allows every TLS version (TLSv1 to TLSv1.3) so that a server is not
 * missed for a version setting; the version scan then tries each version
 * alone on the mode and port found, with core's TlsPolicy (which lowers
 * OpenSSL's security level for TLSv1 and TLSv1.1 only). A port and mode
 * mismatch (a plain greeting where TLS was expected; silence, or a listener
 * that wants a TLS ClientHello, where a greeting was expected) is named.
 * Because the search and the scan use every version and the default suites,
 * the recommendation is held against the settings checked: when the server
 * accepts only versions they exclude, or that a custom cipher list keeps
 * out, or shares no suite with that list, it names the keys to change.
 *
 * Certificate verification is never turned off: every TLS connection uses
 * the TlsPolicy's options (trust store plus system roots, host name, key
 * strength). The chain is read as the handshake ends, before Node refuses an
 * untrusted one (see `internal/ProbeConnection.ts`), and nothing is sent over
 * a connection that did not verify.
 *
 * QUIT is sent only after a greeting, so that a connection the scan ends
 * right after its handshake is closed without a word out of turn.
 *
 * It sends no mail (never MAIL, RCPT or DATA) and no credentials unless
 * a password is given; then it authenticates as a send would (PLAIN, else
 * LOGIN; over TLS unless the mode is NONE; never in clear text under
 * STARTTLS) and reports only the mechanism and the server's reply. Failures
 * use core's TransportFailures classification, so a probe and a send name
 * the same fault the same way.
 *
 * Time: every connection is bounded as a send's would be (connect, greeting
 * and a TLS handshake by the connection timeout; later replies of the mode
 * being checked by the command timeout, of the search and the scan by the
 * connection timeout). The search runs its attempts one after the other on
 * the given port, then 465 and 587 together; the version scan runs its four
 * handshakes together. A port that accepts TCP and never speaks costs about
 * three connection timeouts in all.
 */
import { X509Certificate } from "node:crypto"
import {
  CipherSuites,
  type Settings,
  TlsPolicy,
  TlsVersions,
  TransportError,
  TransportFailures,
  TrustStore,
} from "@spoc-mail/core"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Capabilities from "./internal/Capabilities.ts"
import * as Command from "./internal/Command.ts"
import { type Handshake, ProbeConnection } from "./internal/ProbeConnection.ts"
import * as Reply from "./internal/Reply.ts"
import type { CommandRefused, SocketError } from "./internal/SmtpSocket.ts"

// ---------------------------------------------------------------------------------------------
// Options and report

/** How one attempt starts TLS: from the first byte, after STARTTLS, or not at all. */
export type AttemptMode = "SSL_TLS" | "STARTTLS" | "NONE"

export interface ProbeOptions {
  readonly host: string
  readonly port: number
  /** The mode to check, as configured or as asked for. */
  readonly mode: Settings.EncryptionMode
  /** Connect, greeting and TLS handshake, as in the settings. */
  readonly connectionTimeoutMs: number
  /** Each later reply while checking the mode, as in the settings. */
  readonly commandTimeoutMs: number
  /** The name sent with EHLO. */
  readonly clientName: string
  /** Versions and cipher suites for checking the mode. */
  readonly tls: TlsPolicy.TlsPolicySettings
  readonly trust: TrustStore.TrustStoreShape
  /**
   * `mailuser` as configured. When set, the mode works only if AUTH PLAIN or
   * LOGIN is offered where a send would authenticate, as a send needs.
   */
  readonly user: string | undefined
  /**
   * When given (with `user`), AUTH is tried with it: the only way the probe
   * sends credentials. Only the mechanism and the server's reply are reported.
   */
  readonly password?: Redacted.Redacted<string> | undefined
  /** Ports tried when the given one works with neither TLS mode; default 465 and 587. */
  readonly fallbackPorts?: { readonly sslTls: number; readonly startTls: number }
}

/** Where an attempt stopped, in the words a send's error would use. */
export interface Failure {
  readonly phase: TransportError.Phase
  readonly reason: TransportError.TransportFailure
  readonly detail: string
  readonly hint: string | undefined
  /** The server's reply that ended it, as sent: `454 4.7.0 TLS not available`. */
  readonly reply: string | undefined
}

/** What came after the TCP connection where a greeting belongs. */
export type Greeting =
  | {
      readonly kind: "reply"
      readonly code: number
      /** The greeting as sent, lines joined by newlines. */
      readonly text: string
      /** From the start of the attempt. */
      readonly ms: number
    }
  | { readonly kind: "silent"; readonly waitedMs: number }
  | { readonly kind: "closed" }
  | { readonly kind: "not-smtp"; readonly detail: string }

/** An EHLO (or HELO) reply, read. */
export interface CapabilitiesReport {
  readonly greetedWith: "EHLO" | "HELO"
  /** The extension lines, without the reply code: `SIZE 10240000`, `AUTH PLAIN LOGIN`. */
  readonly extensions: ReadonlyArray<string>
  readonly startTls: boolean
  readonly authMechanisms: ReadonlyArray<string>
}

export interface CertificateReport {
  readonly subject: string
  readonly issuer: string
  readonly validFrom: string
  readonly validTo: string
  /** SHA-256 fingerprint, colon-separated upper-case hex. */
  readonly fingerprint256: string
  readonly selfSigned: boolean
}

export interface TlsReport {
  /** `TLSv1.3`, `TLSv1.2`, ... */
  readonly protocol: string
  /** The negotiated suite by its IANA name. */
  readonly cipher: string
  readonly handshakeMs: number
  /** Leaf first, as Node reports it (it may add the root it found in the trust store). */
  readonly chain: ReadonlyArray<CertificateReport>
  /** The chain leads to a trusted root, is in date, names the host and is strong enough. */
  readonly verified: boolean
  /** Why it did not verify. */
  readonly refusal:
    | {
        readonly reason: TransportError.TransportFailure
        readonly detail: string
        readonly hint: string | undefined
      }
    | undefined
}

export interface AuthReport {
  /** Mechanisms offered where AUTH would run (after TLS when TLS is used). */
  readonly offered: ReadonlyArray<string>
  /** Present only when AUTH was tried: the mechanism and the server's final reply. */
  readonly tried:
    { readonly mechanism: string; readonly accepted: boolean; readonly reply: string } | undefined
}

/** One connection, in one mode, to one port. */
export interface Attempt {
  readonly port: number
  readonly mode: AttemptMode
  /** `check`: the mode being checked, with its settings; `search`: finding what works. */
  readonly purpose: "check" | "search"
  readonly tcp: { readonly connected: boolean; readonly ms: number | undefined }
  readonly greeting: Greeting | undefined
  /** The EHLO reply in plain text (NONE and STARTTLS). */
  readonly capabilitiesBeforeTls: CapabilitiesReport | undefined
  /** The server's reply to STARTTLS, when sent. */
  readonly startTlsReply: string | undefined
  readonly tls: TlsReport | undefined
  /** The EHLO reply inside TLS (SSL_TLS, and STARTTLS after the handshake). */
  readonly capabilitiesAfterTls: CapabilitiesReport | undefined
  readonly auth: AuthReport | undefined
  readonly failure: Failure | undefined
  /** Things that work but should not be left so: plain-text delivery, say. */
  readonly warnings: ReadonlyArray<string>
  readonly durationMs: number
}

/** What the given port does when a client connects. */
export type ListenerKind =
  "plain-greeting" | "tls-first" | "silent" | "closes" | "not-smtp" | "unreachable"

export interface VersionResult {
  readonly version: TlsVersions.TlsVersion
  /** `undefined` when the attempt did not reach the handshake, so nothing can be said. */
  readonly accepted: boolean | undefined
  readonly cipher: string | undefined
  readonly detail: string | undefined
}

export interface VersionScan {
  readonly port: number
  readonly mode: "SSL_TLS" | "STARTTLS"
  readonly results: ReadonlyArray<VersionResult>
}

/** A change to the settings without which the recommended mode and port would fail. */
export interface SettingsChange {
  /** The keys to change. */
  readonly keys: ReadonlyArray<Settings.SettingKey>
  /** What to change and why, as a sentence. */
  readonly detail: string
}

/**
 * How far the recommended mode and port are from a send that gets through:
 * `works`, with `change` made when set; `certificate-refused`, the server
 * speaks the mode there but its certificate does not verify, so no send gets
 * through until `fix` is done; `unencrypted`, NONE, only ever recommended when
 * NONE is the mode checked.
 */
export type RecommendationStatus = "works" | "certificate-refused" | "unencrypted"

export interface Recommendation {
  /** STARTTLS_REQUIRED stays so when checked: a recommendation never loosens the mode. */
  readonly mode: Settings.EncryptionMode
  readonly port: number
  readonly status: RecommendationStatus
  /** Why this mode and port, as a phrase; it says "works" only when the status is `works`. */
  readonly reason: string
  /**
   * Set when the TLS settings checked would fail there (the server accepts only
   * versions they exclude or a custom cipher list keeps out, or shares no suite
   * with that list): what to change as well.
   */
  readonly change: SettingsChange | undefined
  /** What still stands in the way there: an untrusted chain, no encryption at all. */
  readonly caveat: string | undefined
  /**
   * Set when the status is `certificate-refused`: how to get the certificate
   * accepted (renew it, trust its CA, use a name it lists).
   */
  readonly fix: string | undefined
}

/**
 * Why no mode and port are recommended: `no-encryption`, the server answers
 * only in plain text and the mode checked is encrypted (NONE is then never
 * suggested); `silent`, the port answered neither a greeting nor a TLS
 * handshake; `unreachable`, no connection; `none-works`, anything else.
 */
export interface NoRecommendation {
  readonly kind: "no-encryption" | "silent" | "unreachable" | "none-works"
  /** What the probe found, as a sentence. */
  readonly detail: string
  /** What to do about it. */
  readonly fix: string
}

/** The TLS versions of the settings checked. */
export interface TlsSettingsReport {
  /** As cryptographicProtocolsForOutboundCommunication sets them. */
  readonly configured: TlsVersions.TlsVersionRange
  /** What a send offers: narrowed to what a custom cipher list can negotiate. */
  readonly offered: TlsVersions.TlsVersionRange
  readonly customCipherSuites: boolean
}

export interface ProbeReport {
  readonly host: string
  readonly port: number
  readonly mode: Settings.EncryptionMode
  readonly connectionTimeoutMs: number
  /** The mode being checked: whether a send would get through the session's setup. */
  readonly check: {
    readonly works: boolean
    readonly failure: Failure | undefined
    readonly warnings: ReadonlyArray<string>
  }
  /** `detail` reads after "port N": `greets in plain text: 220 mx ESMTP`. */
  readonly listener: { readonly kind: ListenerKind; readonly detail: string }
  /** Set when the port speaks another mode than the one checked. */
  readonly mismatch: string | undefined
  readonly tlsSettings: TlsSettingsReport
  readonly recommendation: Recommendation | undefined
  /** Set exactly when `recommendation` is not: why, and what to do instead. */
  readonly noRecommendation: NoRecommendation | undefined
  /** Which TLS versions the recommended TLS mode and port accept. */
  readonly versions: VersionScan | undefined
  /** Every connection the probe made, in order (the version scan's are in `versions`). */
  readonly attempts: ReadonlyArray<Attempt>
}

// ---------------------------------------------------------------------------------------------
// Failures

/** An attempt stopped; `cause` is kept for the caller, never shown. */
class Stopped extends Data.TaggedError("Stopped")<{
  readonly failure: Failure
  readonly cause?: unknown
}> {}

const stop = (
  phase: TransportError.Phase,
  reason: TransportError.TransportFailure,
  detail: string,
  extra: { readonly hint?: string | undefined; readonly reply?: Reply.Reply; cause?: unknown } = {},
): Stopped =>
  new Stopped({
    failure: {
      phase,
      reason,
      detail,
      hint: extra.hint,
      reply: extra.reply === undefined ? undefined : Reply.format(extra.reply),
    },
    cause: extra.cause,
  })

const classified = (
  phase: TransportError.Phase,
  found: TransportFailures.Classified,
  cause: unknown,
): Stopped => stop(phase, found.reason, found.detail, { hint: found.hint, cause })

/** The failure with the detail and hint of a better classification. */
const withClassified = (failure: Failure, found: TransportFailures.Classified): Failure => ({
  ...failure,
  reason: found.reason,
  detail: found.detail,
  hint: found.hint,
})

const isTlsError = (cause: unknown): boolean => {
  const code = String((cause as { code?: unknown }).code ?? "")
  return code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS") || code.includes("CERT")
}

/** A failure while waiting for a reply after the greeting. */
const replyFailure = (
  phase: TransportError.Phase,
  mode: AttemptMode,
  waitedMs: number,
  failure: SocketError | CommandRefused,
): Stopped => {
  switch (failure._tag) {
    case "CommandRefused":
      return stop(phase, "InvalidArgument", failure.detail, {
        hint: "remove the line break or NUL character from the setting",
      })
    case "SocketTimeout":
      return stop(phase, "CommandTimeout", `the server did not reply within ${waitedMs} ms`, {
        hint: "the server is stuck or slow; raise mailSmtpTimeout if only slow",
      })
    case "SocketClosed":
      return stop(phase, "ConnectionLost", "the server closed the connection")
    case "ReplyInvalid":
      return stop(phase, "ProtocolViolation", `the server's reply is not SMTP: ${failure.detail}`, {
        hint: "check that this host and port is an SMTP server",
      })
    case "SocketFailed":
      return classified(
        phase,
        isTlsError(failure.cause)
          ? TransportFailures.classifyTls(failure.cause, mode)
          : TransportFailures.classifyConnect(failure.cause),
        failure.cause,
      )
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the session

const capabilitiesOf = (reply: Reply.Reply, greetedWith: "EHLO" | "HELO"): CapabilitiesReport => {
  const read = greetedWith === "EHLO" ? Capabilities.fromEhlo(reply) : Capabilities.none
  return {
    greetedWith,
    extensions: greetedWith === "EHLO" ? reply.lines.slice(1) : [],
    startTls: read.startTls,
    authMechanisms: [...read.authMechanisms],
  }
}

const certificateOf = (der: Uint8Array): CertificateReport => {
  const described = TrustStore.describe("", der)
  const certificate = new X509Certificate(der)
  return {
    subject: described.subject,
    issuer: described.issuer,
    validFrom: described.validFrom,
    validTo: described.validTo,
    fingerprint256: described.fingerprint256,
    selfSigned: certificate.checkIssued(certificate) && certificate.verify(certificate.publicKey),
  }
}

const tlsReportOf = (
  handshake: Handshake,
  verified: boolean,
  refusal: TransportFailures.Classified | undefined,
): TlsReport => ({
  protocol: handshake.protocol,
  cipher: handshake.cipher,
  handshakeMs: handshake.ms,
  chain: handshake.chain.map(certificateOf),
  verified,
  refusal:
    refusal === undefined
      ? undefined
      : { reason: refusal.reason, detail: refusal.detail, hint: refusal.hint },
})

/** The attempt as it grows, stage by stage. */
interface Draft {
  tcp: Attempt["tcp"]
  greeting: Greeting | undefined
  capabilitiesBeforeTls: CapabilitiesReport | undefined
  startTlsReply: string | undefined
  tls: TlsReport | undefined
  capabilitiesAfterTls: CapabilitiesReport | undefined
  auth: AuthReport | undefined
  warnings: Array<string>
}

interface AttemptSpec {
  readonly port: number
  readonly mode: AttemptMode
  readonly purpose: "check" | "search" | "scan"
  readonly policy: TlsPolicy.TlsPolicyShape
  /** STARTTLS not offered: go on in plain text, as STARTTLS (not _REQUIRED) does. */
  readonly plainWhenNoStartTls: boolean
  /** The user whose AUTH must be possible (check only). */
  readonly user: string | undefined
  /** Try AUTH as `user` with it (check only, when asked). */
  readonly password: Redacted.Redacted<string> | undefined
  /** End the attempt once TLS is up (the version scan). */
  readonly stopAfterTls: boolean
}

interface ProbeContext {
  readonly options: ProbeOptions
  readonly quitWaitMs: number
}

/** Waits for one reply to what was just sent. */
const replyTo = (
  connection: ProbeConnection,
  phase: TransportError.Phase,
  mode: AttemptMode,
  waitMs: number,
) =>
  Effect.suspend(() => connection.read(Date.now() + waitMs)).pipe(
    Effect.mapError((failure) => replyFailure(phase, mode, waitMs, failure)),
  )

const exchange = (
  connection: ProbeConnection,
  command: Command.Command,
  phase: TransportError.Phase,
  mode: AttemptMode,
  waitMs: number,
) =>
  connection.send(command).pipe(
    Effect.mapError((failure) => replyFailure(phase, mode, waitMs, failure)),
    Effect.andThen(replyTo(connection, phase, mode, waitMs)),
  )

/** EHLO, or HELO when EHLO is refused (RFC 5321 4.1.4). */
const hello = (connection: ProbeConnection, ctx: ProbeContext, mode: AttemptMode, waitMs: number) =>
  Effect.gen(function* () {
    const ehlo = yield* exchange(
      connection,
      Command.ehlo(ctx.options.clientName),
      "ehlo",
      mode,
      waitMs,
    )
    if (Reply.isPositive(ehlo)) return capabilitiesOf(ehlo, "EHLO")
    if (ehlo.code < 500) {
      return yield* stop("ehlo", "GreetingRejected", "the server refused EHLO", {
        reply: ehlo,
        hint: "the server is refusing sessions now; try again later",
      })
    }
    const helo = yield* exchange(
      connection,
      Command.helo(ctx.options.clientName),
      "ehlo",
      mode,
      waitMs,
    )
    if (Reply.isPositive(helo)) return capabilitiesOf(helo, "HELO")
    return yield* stop("ehlo", "GreetingRejected", "the server refused EHLO and HELO", {
      reply: helo,
      hint: "the server may not accept this client's name or address; check its access rules",
    })
  })

/** Waits for the handshake to end and records what it showed, verified or not. */
const handshake = (
  connection: ProbeConnection,
  draft: Draft,
  via: "SSL_TLS" | "STARTTLS",
  timeoutMs: number,
  deadline: number,
) =>
  connection.secured(deadline).pipe(
    Effect.catch((failure) => {
      const shown = connection.handshake
      if (shown !== undefined && failure._tag === "SocketFailed") {
        // The handshake ended and Node refused the chain or the host name.
        const refusal = TransportFailures.classifyTls(failure.cause, via)
        draft.tls = tlsReportOf(shown, false, refusal)
        return Effect.fail(classified("tls", refusal, failure.cause))
      }
      switch (failure._tag) {
        case "SocketTimeout":
          return Effect.fail(
            via === "SSL_TLS"
              ? stop("tls", "GreetingTimeout", `no TLS handshake within ${timeoutMs} ms`, {
                  hint:
                    "the port may not speak TLS from the first byte; the probe tries STARTTLS " +
                    "next",
                })
              : stop(
                  "tls",
                  "TlsHandshakeFailed",
                  `the TLS handshake after STARTTLS did not finish within ${timeoutMs} ms`,
                  { hint: "the server accepted STARTTLS but did not start TLS; check the server" },
                ),
          )
        case "SocketFailed":
          return Effect.fail(
            classified("tls", TransportFailures.classifyTls(failure.cause, via), failure.cause),
          )
        default:
          return Effect.fail(
            stop(
              "tls",
              "TlsHandshakeFailed",
              "the server closed the connection during the TLS handshake",
              {
                hint:
                  via === "SSL_TLS"
                    ? "the port may not speak TLS from the first byte, or it refuses these " +
                      "TLS versions"
                    : "the server may refuse these TLS versions or suites",
              },
            ),
          )
      }
    }),
    Effect.tap(() =>
      Effect.sync(() => {
        draft.tls = tlsReportOf(connection.handshake!, true, undefined)
      }),
    ),
  )

/** AUTH PLAIN, else LOGIN, as a send does; the credentials are only ever sent as secrets. */
const authenticate = (
  connection: ProbeConnection,
  credentials: Settings.Credentials,
  mechanism: "PLAIN" | "LOGIN",
  mode: AttemptMode,
  waitMs: number,
) =>
  Effect.gen(function* () {
    const step = (command: Command.Command, expected: number) =>
      exchange(connection, command, "auth", mode, waitMs).pipe(
        Effect.map((answer) => ({ answer, ok: answer.code === expected })),
      )
    if (mechanism === "PLAIN") {
      const plain = Command.authPlain(credentials.user, credentials.password)
      if (Command.isRefused(plain)) {
        return yield* stop("auth", "InvalidArgument", `${plain.detail}; nothing was sent`, {
          hint: "write mailuser and mailpass without line breaks or NUL characters",
        })
      }
      return yield* step(plain, 235)
    }
    const start = yield* step(Command.authLogin, 334)
    if (!start.ok) return start
    const user = yield* step(Command.authResponse(Redacted.make(credentials.user)), 334)
    if (!user.ok) return user
    return yield* step(Command.authResponse(credentials.password), 235)
  })

/** The dialogue of one attempt, stage by stage; fails with where it stopped. */
const dialogue = (
  connection: ProbeConnection,
  ctx: ProbeContext,
  spec: AttemptSpec,
  draft: Draft,
  started: number,
) =>
  Effect.gen(function* () {
    const { options } = ctx
    const timeoutMs = options.connectionTimeoutMs
    const deadline = started + timeoutMs
    const waitMs = spec.purpose === "check" ? options.commandTimeoutMs : timeoutMs
    const mode = spec.mode

    // TCP.
    const tcpMs = yield* connection.connected(deadline).pipe(
      Effect.mapError((failure) =>
        failure._tag === "SocketTimeout"
          ? stop("connect", "ConnectTimeout", `no TCP connection within ${timeoutMs} ms`, {
              hint: TransportFailures.classifyConnect({ code: "ETIMEDOUT" }).hint,
            })
          : failure._tag === "SocketFailed"
            ? classified("connect", TransportFailures.classifyConnect(failure.cause), failure.cause)
            : stop("connect", "ConnectionLost", "the connection closed while it was being opened"),
      ),
    )
    draft.tcp = { connected: true, ms: tcpMs }

    // TLS from the first byte.
    if (mode === "SSL_TLS") {
      yield* handshake(connection, draft, "SSL_TLS", timeoutMs, deadline)
      if (spec.stopAfterTls) return
    }

    // The greeting.
    const greeting = yield* connection.read(deadline).pipe(
      Effect.catch((failure) => {
        const hint = TransportFailures.greetingHint(mode)
        switch (failure._tag) {
          case "SocketTimeout":
            draft.greeting = { kind: "silent", waitedMs: Date.now() - started }
            return Effect.fail(
              stop("greeting", "GreetingTimeout", `no greeting within ${timeoutMs} ms`, { hint }),
            )
          case "ReplyInvalid":
            draft.greeting = { kind: "not-smtp", detail: failure.detail }
            return Effect.fail(
              stop(
                "greeting",
                "ProtocolViolation",
                `the server is not speaking SMTP: ${failure.detail}`,
                {
                  hint,
                },
              ),
            )
          case "SocketClosed":
            draft.greeting = { kind: "closed" }
            return Effect.fail(
              stop(
                "greeting",
                "ConnectionLost",
                "the server closed the connection without a greeting",
                {
                  hint,
                },
              ),
            )
          case "SocketFailed": {
            draft.greeting = { kind: "closed" }
            const found = TransportFailures.classifyConnect(failure.cause)
            return Effect.fail(
              classified("greeting", { ...found, hint: found.hint ?? hint }, failure.cause),
            )
          }
        }
      }),
    )
    draft.greeting = {
      kind: "reply",
      code: greeting.code,
      text: Reply.format(greeting),
      ms: Date.now() - started,
    }
    if (greeting.code !== 220) {
      return yield* stop("greeting", "GreetingRejected", "the server refused the session", {
        reply: greeting,
        hint:
          greeting.code === 421
            ? "the server is busy or closing; try again later"
            : "the server does not accept mail from this host; check its access rules",
      })
    }

    // EHLO, then STARTTLS and EHLO again.
    const offered = yield* hello(connection, ctx, mode, waitMs)
    if (mode === "SSL_TLS") draft.capabilitiesAfterTls = offered
    else draft.capabilitiesBeforeTls = offered
    let final = offered

    if (mode === "NONE" && offered.startTls && spec.purpose === "check") {
      draft.warnings.push(
        "the server offers STARTTLS, but mode NONE never uses it: mail goes in plain text",
      )
    }
    if (mode === "STARTTLS") {
      if (!offered.startTls) {
        if (!spec.plainWhenNoStartTls) {
          return yield* stop(
            "starttls",
            "StartTlsNotOffered",
            "the server does not offer STARTTLS",
            {
              hint: "use SSL_TLS if the server has a port for it (usually 465)",
            },
          )
        }
        if (spec.user !== undefined) {
          return yield* stop(
            "starttls",
            "CleartextCredentials",
            "the server does not offer STARTTLS, so a send would have to put the password in " +
              "clear text, which spoc-mail refuses",
            {
              hint:
                "enable STARTTLS on the server, use SSL_TLS (usually port 465), or clear " +
                "mailuser with [EMPTY] if the server relays for this host without a login",
            },
          )
        }
        draft.warnings.push(
          "the server does not offer STARTTLS: mail would go in plain text " +
            "(STARTTLS_REQUIRED refuses that)",
        )
      } else {
        const answer = yield* exchange(connection, Command.startTls, "starttls", mode, waitMs)
        draft.startTlsReply = Reply.format(answer)
        if (answer.code !== 220) {
          return yield* stop("starttls", "StartTlsRefused", "the server refused STARTTLS", {
            reply: answer,
            hint:
              "the server offers STARTTLS but cannot start it (often a missing certificate); " +
              "fix the server, or use SSL_TLS if it has a port for that",
          })
        }
        connection.startTls(spec.policy.optionsFor(options.host))
        yield* handshake(connection, draft, "STARTTLS", timeoutMs, Date.now() + timeoutMs)
        if (spec.stopAfterTls) return
        final = yield* hello(connection, ctx, mode, waitMs)
        draft.capabilitiesAfterTls = final
      }
    }

    // AUTH: what is offered where it would run, and, when asked, whether the credentials pass.
    draft.auth = { offered: final.authMechanisms, tried: undefined }
    const user = spec.user
    if (user === undefined) return
    if (final.authMechanisms.length === 0) {
      return yield* stop(
        "auth",
        "AuthNotOffered",
        "mailuser is set, but the server does not offer AUTH",
        {
          hint:
            "if the server relays mail for this host without a login, clear mailuser with " +
            "[EMPTY]; otherwise use the server's submission port",
        },
      )
    }
    const mechanism = (["PLAIN", "LOGIN"] as const).find((m) => final.authMechanisms.includes(m))
    if (mechanism === undefined) {
      return yield* stop(
        "auth",
        "NoUsableAuthMechanism",
        `the server offers AUTH ${final.authMechanisms.join(" ")}, but spoc-mail supports only ` +
          "PLAIN and LOGIN",
        { hint: "enable AUTH PLAIN or LOGIN on the server (over TLS)" },
      )
    }
    if (spec.password === undefined) return
    const result = yield* authenticate(
      connection,
      { user, password: spec.password },
      mechanism,
      mode,
      waitMs,
    )
    draft.auth = {
      offered: final.authMechanisms,
      tried: { mechanism, accepted: result.ok, reply: Reply.format(result.answer) },
    }
    if (!result.ok) {
      const answer = result.answer
      const refusal = TransportFailures.authRefusal(
        { code: answer.code, enhancedCode: answer.enhancedCode, text: Reply.text(answer) },
        `AUTH ${mechanism}`,
      )
      return yield* stop("auth", refusal.reason, refusal.detail, {
        reply: answer,
        hint: refusal.hint,
      })
    }
  })

/** One attempt: a connection, its dialogue, QUIT when in step. Never fails. */
const attempt = (
  ctx: ProbeContext,
  spec: AttemptSpec,
): Effect.Effect<{ readonly attempt: Attempt; readonly cause: unknown }> =>
  Effect.gen(function* () {
    const { options } = ctx
    const started = Date.now()
    const draft: Draft = {
      tcp: { connected: false, ms: undefined },
      greeting: undefined,
      capabilitiesBeforeTls: undefined,
      startTlsReply: undefined,
      tls: undefined,
      capabilitiesAfterTls: undefined,
      auth: undefined,
      warnings: [],
    }
    const outcome = yield* Effect.acquireUseRelease(
      Effect.sync(() =>
        ProbeConnection.start(
          options.host,
          spec.port,
          spec.mode === "SSL_TLS" ? spec.policy.optionsFor(options.host) : undefined,
        ),
      ),
      (connection) =>
        Effect.result(dialogue(connection, ctx, spec, draft, started)).pipe(
          // QUIT only once the server has greeted: before that it is out of turn, and servers
          // answer "421 You talk too soon". Without a greeting the connection is just closed.
          Effect.tap(() =>
            draft.greeting?.kind === "reply" ? connection.quit(ctx.quitWaitMs) : Effect.void,
          ),
        ),
      (connection) => Effect.sync(() => connection.destroy()),
    )
    const stopped = outcome._tag === "Failure" ? outcome.failure : undefined
    const failure =
      stopped?.failure.reason === "TlsVersionMismatch" && spec.policy.removedByCipherList.length > 0
        ? withClassified(
            stopped.failure,
            TransportFailures.versionMismatch(spec.policy.removedByCipherList),
          )
        : stopped?.failure
    return {
      attempt: {
        port: spec.port,
        mode: spec.mode,
        purpose: spec.purpose === "check" ? ("check" as const) : ("search" as const),
        ...draft,
        failure,
        durationMs: Date.now() - started,
      },
      cause: stopped?.cause,
    }
  }).pipe(
    Effect.annotateLogs({
      endpoint: TransportError.formatEndpoint({
        host: ctx.options.host,
        port: spec.port,
        role: "primary",
      }),
      mode: spec.mode,
    }),
  )

// ---------------------------------------------------------------------------------------------
// The probe

/** The attempt mode that checks an encryption mode. */
const attemptModeOf = (mode: Settings.EncryptionMode): AttemptMode =>
  mode === "SSL_TLS" ? "SSL_TLS" : mode === "NONE" ? "NONE" : "STARTTLS"

/** True when the attempt shows the port speaks its mode (TLS came up, or plain SMTP works). */
const speaks = (attempt: Attempt): boolean =>
  attempt.mode === "NONE" ? attempt.capabilitiesBeforeTls !== undefined : attempt.tls !== undefined

const allVersions: TlsVersions.TlsVersionRange = { min: "TLSv1", max: "TLSv1.3" }

/** What the given port does, from the attempts made on it. */
const listenerOf = (attempts: ReadonlyArray<Attempt>): ProbeReport["listener"] => {
  const tlsFirst = attempts.find((a) => a.mode === "SSL_TLS" && a.tls !== undefined)
  if (tlsFirst !== undefined) {
    return {
      kind: "tls-first",
      detail: `waits for a TLS ClientHello, then speaks ${tlsFirst.tls!.protocol}`,
    }
  }
  const greeted = attempts.find((a) => a.greeting?.kind === "reply")
  if (greeted?.greeting?.kind === "reply") {
    return {
      kind: "plain-greeting",
      detail: `greets in plain text: ${greeted.greeting.text.split("\n")[0]}`,
    }
  }
  if (!attempts.some((a) => a.tcp.connected)) {
    const failure = attempts.find((a) => a.failure !== undefined)?.failure
    return { kind: "unreachable", detail: `cannot be reached: ${failure?.detail ?? "no TCP"}` }
  }
  const greetings = attempts.flatMap((a) => (a.greeting === undefined ? [] : [a.greeting]))
  const notSmtp = greetings.find((g) => g.kind === "not-smtp")
  if (notSmtp?.kind === "not-smtp") {
    return { kind: "not-smtp", detail: `sends something that is not SMTP: ${notSmtp.detail}` }
  }
  if (greetings.some((g) => g.kind === "closed")) {
    return { kind: "closes", detail: "closes the connection without a greeting or a handshake" }
  }
  return {
    kind: "silent",
    detail: "accepts TCP but neither greets nor completes a TLS handshake",
  }
}

const mismatchOf = (
  mode: Settings.EncryptionMode,
  port: number,
  listener: ProbeReport["listener"],
  startTlsOffered: boolean | undefined,
): string | undefined => {
  if (mode === "SSL_TLS" && listener.kind === "plain-greeting") {
    return (
      `port ${port} greets in plain text where SSL_TLS expects TLS from the first byte: ` +
      (startTlsOffered === false
        ? "it is a plain-text port, and it offers no STARTTLS either"
        : "it is a STARTTLS (or plain) port")
    )
  }
  if (mode === "SSL_TLS") return undefined
  switch (listener.kind) {
    case "tls-first":
      return (
        `port ${port} waits for a TLS ClientHello where ${mode} expects a plain greeting: ` +
        "it is an SSL_TLS port"
      )
    case "silent":
    case "closes":
      return (
        `port ${port} ${listener.kind === "silent" ? "stays silent" : "hangs up"} where ` +
        `${mode} expects a greeting, and does not answer TLS from the first byte either`
      )
    default:
      return undefined
  }
}

/** Why the recommended place is not quite done, when it is not. */
const caveatOf = (attempt: Attempt): string | undefined =>
  attempt.mode === "NONE"
    ? "the server offers no encryption on this port: mail, and any password, would cross " +
      "the network in clear text"
    : attempt.tls?.refusal?.detail

/** TLS came up, but the chain did not verify: no send gets through there as it is. */
const certificateRefused = (attempt: Attempt): boolean =>
  attempt.tls !== undefined && !attempt.tls.verified

/** How to get a refused certificate accepted: core's hint for the refusal. */
const certificateFixOf = (attempt: Attempt): string =>
  attempt.tls?.refusal?.hint ??
  "have the server's certificate replaced, or add its root CA to the trust store " +
    "(spoc-mail trust fetch shows the chain, spoc-mail trust import adds it)"

/** The mode to set for `found`: STARTTLS_REQUIRED, when checked, is not loosened to STARTTLS. */
const recommendedMode = (
  found: AttemptMode,
  checked: Settings.EncryptionMode,
): Settings.EncryptionMode =>
  found === "STARTTLS" && checked === "STARTTLS_REQUIRED" ? "STARTTLS_REQUIRED" : found

const recommendationOf = (
  found: Attempt,
  options: ProbeOptions,
  checkWorks: boolean,
  change: SettingsChange | undefined,
): Recommendation => {
  const mode = recommendedMode(found.mode, options.mode)
  const { port } = found
  const common = { mode, port, change, caveat: caveatOf(found) }
  if (found.mode === "NONE") {
    return {
      ...common,
      status: "unencrypted",
      reason: `port ${port} accepts plain SMTP, and no TLS mode was found`,
      fix: undefined,
    }
  }
  if (certificateRefused(found)) {
    return {
      ...common,
      status: "certificate-refused",
      reason:
        `the server speaks ${found.mode} on port ${port}, but its certificate is refused: ` +
        (found.tls?.refusal?.detail ?? "it does not verify"),
      fix: certificateFixOf(found),
    }
  }
  const asChecked =
    checkWorks && port === options.port && found.mode === attemptModeOf(options.mode)
  return {
    ...common,
    status: "works",
    reason: asChecked
      ? `${options.mode} works on port ${port}`
      : change !== undefined
        ? `${found.mode} works on port ${port}, but not with these TLS settings`
        : `${found.mode} works on port ${port}`,
    fix: undefined,
  }
}

/** Ports where nothing answered in either mode: no greeting, no TLS handshake. */
const silentPortsOf = (attempts: ReadonlyArray<Attempt>): ReadonlySet<number> =>
  new Set(
    attempts
      .map((a) => a.port)
      .filter((port) => {
        const on = attempts.filter((a) => a.port === port)
        return (
          on.some((a) => a.mode === "SSL_TLS") &&
          on.some((a) => a.mode !== "SSL_TLS") &&
          on.some((a) => a.tcp.connected) &&
          !on.some((a) => a.greeting?.kind === "reply" || a.tls !== undefined)
        )
      }),
  )

/** Whether `port` offers STARTTLS, as its plain EHLO showed; `undefined` when never read. */
const startTlsOfferedOn = (attempts: ReadonlyArray<Attempt>, port: number): boolean | undefined =>
  attempts.find((a) => a.port === port && a.capabilitiesBeforeTls !== undefined)
    ?.capabilitiesBeforeTls?.startTls

const checkHostAndPort =
  "check mailserver and mailSmtpPort (it may not be the mail server's port, or a firewall " +
  "or a hung mail service holds it)"

/** The hint for a failure on a port where nothing answered in either mode. */
const silentHint = (port: number): string =>
  `nothing answered on port ${port} in either mode: ${checkHostAndPort}`

/** What to do when no TLS came up anywhere: never NONE, but TLS on the server or its ports. */
const noEncryptionFixOf = (options: ProbeOptions, attempts: ReadonlyArray<Attempt>): string => {
  const { port } = options
  const fallbacks = options.fallbackPorts ?? { sslTls: 465, startTls: 587 }
  const ports = [
    { port: fallbacks.startTls, name: `submission port (${fallbacks.startTls}, STARTTLS)` },
    { port: fallbacks.sslTls, name: `port ${fallbacks.sslTls} (SSL_TLS)` },
  ].filter((p) => p.port !== port)
  const onServer =
    startTlsOfferedOn(attempts, port) === true
      ? `fix STARTTLS on the server's port ${port}`
      : `enable TLS on the server (STARTTLS on port ${port})`
  const tried = ports.filter((p) => attempts.some((a) => a.port === p.port))
  return (
    onServer +
    (ports.length === 0 ? "" : `, or use its ${ports.map((p) => p.name).join(" or ")}`) +
    (tried.length === 0
      ? ""
      : `; on ${options.host} ${tried.length === 1 ? "it does" : "they do"} not work now, so ` +
        "ask the server's administrator where TLS is offered")
  )
}

/**
 * Why nothing is recommended. An encrypted mode checked against a server
 * that answers only in plain text gets no NONE: that would be a downgrade.
 */
const noRecommendationOf = (
  options: ProbeOptions,
  attempts: ReadonlyArray<Attempt>,
  listener: ProbeReport["listener"],
  check: Attempt,
): NoRecommendation => {
  const { host, port } = options
  const elsewhere = attempts
    .filter((a) => a.port !== port)
    .map((a) => `${a.mode} on port ${a.port}: ${a.failure?.detail ?? "no TLS"}`)
  const also = elsewhere.length === 0 ? "" : ` (also tried: ${elsewhere.join("; ")})`
  const plainHere = attempts.some((a) => a.port === port && a.capabilitiesBeforeTls)
  if (plainHere && !attempts.some((a) => a.tls !== undefined)) {
    const startTls = attempts.find((a) => a.port === port && a.mode === "STARTTLS")
    const why =
      startTlsOfferedOn(attempts, port) === true
        ? `port ${port} offers STARTTLS, but TLS does not come up: ` +
          (startTls?.failure?.detail ?? "the handshake failed")
        : `port ${port} speaks SMTP only in plain text: it offers no STARTTLS, and no TLS ` +
          "from the first byte"
    return {
      kind: "no-encryption",
      detail: `no encrypted mode works on ${host}: ${why}${also}`,
      fix: noEncryptionFixOf(options, attempts),
    }
  }
  switch (listener.kind) {
    case "unreachable":
      return {
        kind: "unreachable",
        detail: `port ${port} of ${host} ${listener.detail}${also}`,
        fix: check.failure?.hint ?? "check mailserver and mailSmtpPort",
      }
    case "silent":
    case "closes":
    case "not-smtp":
      return {
        kind: "silent",
        detail: `nothing answered on port ${port} in either mode: it ${listener.detail}${also}`,
        fix: checkHostAndPort,
      }
    default: {
      const ports = [...new Set(attempts.map((a) => a.port))].join(", ")
      return {
        kind: "none-works",
        detail: `no mode worked on port ${ports}`,
        fix: check.failure?.hint ?? "see where each attempt stopped",
      }
    }
  }
}

/**
 * Each failure's hint held against the whole report: a hint that names a
 * mode or port the report showed failing (SSL_TLS on a port that is silent
 * to it too, STARTTLS where it is not offered) is replaced by one that fits.
 */
const reviewHints = (
  attempts: ReadonlyArray<Attempt>,
  options: ProbeOptions,
  recommendation: Recommendation | undefined,
): Array<Attempt> => {
  const silentPorts = silentPortsOf(attempts)
  const tlsSomewhere = attempts.some((a) => a.tls !== undefined)
  const noEncryptionFix = noEncryptionFixOf(options, attempts)
  const hintFor = (a: Attempt, failure: Failure): string | undefined => {
    const beforeTls = failure.phase === "greeting" || (failure.phase === "tls" && !a.tls)
    if (silentPorts.has(a.port) && beforeTls) return silentHint(a.port)
    const modeHint =
      failure.reason === "StartTlsNotOffered" || failure.reason === "PlaintextWhereTlsExpected"
    if (!tlsSomewhere && failure.reason === "CleartextCredentials") {
      return (
        `${noEncryptionFix}; or clear mailuser with [EMPTY] if the server relays for this ` +
        "host without a login"
      )
    }
    if (!tlsSomewhere && modeHint) return noEncryptionFix
    const plainOnly = startTlsOfferedOn(attempts, a.port) === false
    if (modeHint && plainOnly && recommendation !== undefined) {
      return (
        `port ${a.port} offers no encryption: use ${recommendation.mode} on port ` +
        `${recommendation.port}, as recommended`
      )
    }
    return failure.hint
  }
  return attempts.map((a) =>
    a.failure === undefined ? a : { ...a, failure: { ...a.failure, hint: hintFor(a, a.failure) } },
  )
}

const versionsKey = "cryptographicProtocolsForOutboundCommunication"
const allowKey = "allowCustomCipherSuitesForOutboundCommunication"
const suitesKey = "customCipherSuitesForOutboundCommunication"

/** `TLSv1.2 and TLSv1.3`. */
const listed = (versions: ReadonlyArray<TlsVersions.TlsVersion>): string =>
  versions.length <= 1
    ? (versions[0] ?? "")
    : `${versions.slice(0, -1).join(", ")} and ${versions[versions.length - 1]}`

const rankOf = (version: TlsVersions.TlsVersion): number => TlsVersions.tlsVersions.indexOf(version)

/** The smallest range holding `range` and every one of `versions`. */
const spanning = (
  range: TlsVersions.TlsVersionRange,
  versions: ReadonlyArray<TlsVersions.TlsVersion>,
): TlsVersions.TlsVersionRange => {
  const ranks = [range.min, range.max, ...versions].map(rankOf)
  return {
    min: TlsVersions.tlsVersions[Math.min(...ranks)]!,
    max: TlsVersions.tlsVersions[Math.max(...ranks)]!,
  }
}

/**
 * What the TLS settings checked must change for `found` to work: the probe
 * finds places with every version and the default suites, so a place it
 * found may still refuse a send with the settings as they are.
 */
const changeFor = (
  found: Attempt,
  scan: VersionScan | undefined,
  policy: TlsPolicy.TlsPolicyShape,
  check: Attempt,
  tls: TlsPolicy.TlsPolicySettings,
): SettingsChange | undefined => {
  if (found.mode === "NONE") return undefined
  const accepted = scan?.results.filter((r) => r.accepted === true).map((r) => r.version) ?? []
  const negotiated = TlsVersions.tlsVersions.find((v) => v === found.tls?.protocol)
  const server = accepted.length > 0 ? accepted : negotiated === undefined ? [] : [negotiated]
  if (server.length === 0) return undefined

  // Versions that fit: only a custom list sharing no suite with the server stands in the way.
  if (server.some((v) => TlsVersions.includes(policy.versions, v))) {
    const samePlace = found.port === check.port && found.mode === check.mode
    if (samePlace && tls.allowCustomCipherSuites && check.failure?.reason === "NoSharedCipher") {
      return {
        keys: [suitesKey, allowKey],
        detail:
          `the server shares no suite with ${suitesKey} (with spoc-mail's default suites it ` +
          `chose ${found.tls?.cipher ?? "another one"}): add that suite to the list, or set ` +
          `${allowKey} to false`,
      }
    }
    return undefined
  }

  // The version setting allows some, but the custom list has no suite for them.
  const removed = server.filter((v) => TlsVersions.includes(policy.configuredVersions, v))
  if (removed.length > 0) {
    return {
      keys: [suitesKey, allowKey],
      detail:
        `the server accepts only ${listed(server)}, which ${versionsKey} allows but ${suitesKey} ` +
        `has no suite for, so a send does not offer it: add ` +
        `${TransportFailures.suitesToAdd(removed)} to that list, or set ${allowKey} to false`,
    }
  }

  // The version setting excludes every version the server accepts.
  const modern = server.filter((v) => !TlsVersions.includesLegacy({ min: v, max: v }))
  const wanted = modern.length > 0 ? modern : server
  const range = spanning(policy.configuredVersions, wanted)
  const keys: Array<Settings.SettingKey> = [versionsKey]
  let detail =
    `the server accepts only ${listed(server)}, which ${versionsKey} ` +
    `(${TlsVersions.format(policy.configuredVersions)}) excludes: set it to ` +
    TlsVersions.format(range)
  if (tls.allowCustomCipherSuites) {
    const narrowed = CipherSuites.narrowRange(tls.cipherSuites, range)
    const missing = wanted.filter(
      (v) => narrowed === undefined || !TlsVersions.includes(narrowed, v),
    )
    if (missing.length > 0) {
      keys.push(suitesKey, allowKey)
      detail +=
        `, and add ${TransportFailures.suitesToAdd(missing)} to ${suitesKey} (or set ` +
        `${allowKey} to false)`
    }
  }
  if (modern.length === 0) {
    const verb = server.length === 1 ? "is" : "are"
    detail += `; ${listed(server)} ${verb} outdated: have the server upgraded`
  }
  return { keys, detail }
}

/** Which of the four versions the server accepts, each tried alone with core's TlsPolicy. */
const scanVersions = (
  ctx: ProbeContext,
  port: number,
  mode: "SSL_TLS" | "STARTTLS",
): Effect.Effect<VersionScan> =>
  Effect.forEach(
    TlsVersions.tlsVersions,
    (version) =>
      attempt(ctx, {
        port,
        mode,
        purpose: "scan",
        policy: TlsPolicy.make(
          {
            tlsVersions: { min: version, max: version },
            allowCustomCipherSuites: false,
            cipherSuites: ctx.options.tls.cipherSuites,
          },
          ctx.options.trust,
        ),
        plainWhenNoStartTls: false,
        user: undefined,
        password: undefined,
        stopAfterTls: true,
      }).pipe(Effect.map(({ attempt, cause }) => versionResult(version, attempt, cause))),
    { concurrency: TlsVersions.tlsVersions.length },
  ).pipe(Effect.map((results) => ({ port, mode, results })))

/** OpenSSL's own words for a refused handshake (`alert protocol version`), else the detail. */
const refusalOf = (cause: unknown, failure: Failure): string => {
  const message = String((cause as { message?: unknown } | undefined)?.message ?? "")
  const words = /SSL routines:[^:]*:([^:]+)/i.exec(message)?.[1]?.trim()
  return words === undefined ? failure.detail : `refused: ${words}`
}

const versionResult = (
  version: TlsVersions.TlsVersion,
  attempt: Attempt,
  cause: unknown,
): VersionResult => {
  if (attempt.tls !== undefined) {
    return { version, accepted: true, cipher: attempt.tls.cipher, detail: undefined }
  }
  const failure = attempt.failure
  if ((cause as { code?: unknown } | undefined)?.code === "ERR_SSL_NO_PROTOCOLS_AVAILABLE") {
    return {
      version,
      accepted: undefined,
      cipher: undefined,
      detail: `this Node's OpenSSL cannot offer ${version}`,
    }
  }
  if (failure?.phase === "tls") {
    return { version, accepted: false, cipher: undefined, detail: refusalOf(cause, failure) }
  }
  return {
    version,
    accepted: undefined,
    cipher: undefined,
    detail: `the handshake was not reached: ${failure?.detail ?? "unknown"}`,
  }
}

/**
 * Probes `options.host`:`options.port`: checks the mode, finds what works
 * (SSL_TLS first, then STARTTLS), scans TLS versions there, and reports it
 * all. Never fails: every fault is in the report.
 */
export const probe = (options: ProbeOptions): Effect.Effect<ProbeReport> =>
  Effect.gen(function* () {
    const ctx: ProbeContext = { options, quitWaitMs: Math.min(2_000, options.connectionTimeoutMs) }
    const widePolicy = TlsPolicy.make(
      {
        tlsVersions: allVersions,
        allowCustomCipherSuites: false,
        cipherSuites: options.tls.cipherSuites,
      },
      options.trust,
    )
    const search = (port: number, mode: AttemptMode): AttemptSpec => ({
      port,
      mode,
      purpose: "search",
      policy: widePolicy,
      plainWhenNoStartTls: false,
      user: undefined,
      password: undefined,
      stopAfterTls: false,
    })
    const attempts: Array<Attempt> = []

    // 1. The mode being checked, with its own TLS settings, as a send would run it.
    const checkMode = attemptModeOf(options.mode)
    const checkPolicy = TlsPolicy.make(options.tls, options.trust)
    const { attempt: check } = yield* attempt(ctx, {
      port: options.port,
      mode: checkMode,
      purpose: "check",
      policy: checkPolicy,
      plainWhenNoStartTls: options.mode === "STARTTLS",
      user: options.user,
      password: options.user === undefined ? undefined : options.password,
      stopAfterTls: false,
    })
    attempts.push(check)

    // 2. What the given port speaks: SSL_TLS first, then STARTTLS. The check counts unless
    //    it failed on its own TLS settings, which the search does not use.
    let found: Attempt | undefined
    const unknownHost = check.failure?.reason === "DnsFailure"
    if (check.tcp.connected) {
      for (const mode of ["SSL_TLS", "STARTTLS"] as const) {
        const reusable =
          check.mode === mode &&
          check.failure?.reason !== "TlsVersionMismatch" &&
          check.failure?.reason !== "NoSharedCipher"
        const tried = reusable ? check : (yield* attempt(ctx, search(options.port, mode))).attempt
        if (tried !== check) attempts.push(tried)
        if (speaks(tried)) {
          found = tried
          break
        }
      }
    }

    // 3. Neither works there: SSL_TLS on 465 and STARTTLS on 587 of the same host, together.
    if (found === undefined && !unknownHost) {
      const fallbacks = options.fallbackPorts ?? { sslTls: 465, startTls: 587 }
      const specs = [
        search(fallbacks.sslTls, "SSL_TLS"),
        search(fallbacks.startTls, "STARTTLS"),
      ].filter((s) => s.port !== options.port)
      const tried = yield* Effect.forEach(specs, (s) => attempt(ctx, s), { concurrency: 2 })
      const made = tried.map((t) => t.attempt)
      attempts.push(...made)
      // A chain that verifies first: a refused one is no better than nothing yet.
      found = made.find((a) => speaks(a) && !certificateRefused(a)) ?? made.find(speaks)
    }

    // 4. No TLS anywhere: plain SMTP on the given port, said to be unencrypted, and only when
    //    NONE is the mode checked. An encrypted mode is never answered with NONE.
    if (found === undefined && options.mode === "NONE") {
      const plain = attempts.find((a) => a.port === options.port && a.capabilitiesBeforeTls)
      if (plain !== undefined) found = { ...plain, mode: "NONE" }
    }

    // 5. Which versions the TLS mode found accepts.
    const versions =
      found !== undefined && found.mode !== "NONE"
        ? yield* scanVersions(ctx, found.port, found.mode)
        : undefined

    // 6. The recommendation, with what the TLS settings must change for it to work; or why
    //    there is none. Then each failure's hint is held against what the report showed.
    const checkWorks = check.failure === undefined
    const change =
      found === undefined ? undefined : changeFor(found, versions, checkPolicy, check, options.tls)
    const recommendation =
      found === undefined ? undefined : recommendationOf(found, options, checkWorks, change)
    const reviewed = reviewHints(attempts, options, recommendation)
    const reviewedCheck = reviewed[0]!
    const listener = listenerOf(reviewed.filter((a) => a.port === options.port))
    return {
      host: options.host,
      port: options.port,
      mode: options.mode,
      connectionTimeoutMs: options.connectionTimeoutMs,
      check: {
        works: checkWorks,
        failure: reviewedCheck.failure,
        warnings: reviewedCheck.warnings,
      },
      listener,
      mismatch: mismatchOf(
        options.mode,
        options.port,
        listener,
        startTlsOfferedOn(reviewed, options.port),
      ),
      tlsSettings: {
        configured: checkPolicy.configuredVersions,
        offered: checkPolicy.versions,
        customCipherSuites: options.tls.allowCustomCipherSuites,
      },
      recommendation,
      noRecommendation:
        recommendation === undefined
          ? noRecommendationOf(options, reviewed, listener, reviewedCheck)
          : undefined,
      versions,
      attempts: reviewed,
    }
  })

/**
 * The report as JSON for scripts: every field is present, `null` where it
 * does not apply, so the shape does not change with the outcome.
 */
export const toJson = (report: ProbeReport): string =>
  JSON.stringify(report, (_key, value: unknown) => (value === undefined ? null : value), 2)
