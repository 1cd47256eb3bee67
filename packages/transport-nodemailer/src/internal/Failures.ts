/**
 * Turns what went wrong in a nodemailer session into core's `TransportError`:
 * nodemailer's error codes (`ESOCKET`, `ETLS`, `EAUTH`, `EENVELOPE`, ...),
 * its reply and command, and the phase the session was in. Socket and TLS
 * errors go through core's `TransportFailures` classifiers, so both
 * transports give the same reason and hint for the same fault.
 *
 * It also builds the errors for the refusals the transport decides itself
 * (STARTTLS not offered, credentials that would go in clear text, AUTH not
 * offered or no usable mechanism, SMTPUTF8 missing, a bad argument).
 *
 * A failed lookup of the endpoint's name (the transport resolves it itself,
 * see `EndpointAddress.ts`) is an error in phase connect, classified as a
 * socket error is: a name that does not resolve is a `DnsFailure`.
 *
 * Nothing here reads a secret: commands come from the session's transcript,
 * whose AUTH arguments are already masked.
 */
import { Transport, TransportError, TransportFailures } from "@spoc-mail/core"
import type { SMTPError } from "nodemailer/lib/smtp-connection"
import type { LookupFailure } from "./EndpointAddress.ts"
import type { Session, SessionFailure } from "./Session.ts"

type ConnectionPolicy = Transport.ConnectionPolicy
type Phase = TransportError.Phase
type TransportFailure = TransportError.TransportFailure

interface Reply {
  readonly code?: number
  readonly enhancedCode?: string
  readonly serverText?: string
}

/** Splits a raw reply (`550-5.1.1 a\n550 5.1.1 b`) into code, enhanced code and text. */
export const parseReply = (response: string | undefined): Reply => {
  if (response === undefined) return {}
  const lines = response.split(/\r?\n/).filter((line) => line.trim() !== "")
  const code = /^(\d{3})/.exec(lines[0] ?? "")?.[1]
  if (code === undefined) return response.trim() === "" ? {} : { serverText: response.trim() }
  let enhancedCode: string | undefined
  const texts = lines.map((line) => {
    const split = TransportError.splitEnhancedCode(line.replace(/^\d{3}[ -]?/, ""))
    enhancedCode ??= split.enhancedCode
    return split.text
  })
  return {
    code: Number(code),
    ...(enhancedCode === undefined ? {} : { enhancedCode }),
    serverText: texts.join("\n"),
  }
}

interface Described {
  readonly reason: TransportFailure
  readonly phase: Phase
  readonly detail: string
  readonly hint?: string | undefined
  readonly command?: string | undefined
  readonly reply?: Reply
}

const build = (policy: ConnectionPolicy, d: Described, cause?: unknown) =>
  new TransportError.TransportError({
    reason: d.reason,
    phase: d.phase,
    endpoint: policy.endpoint,
    detail: d.detail,
    ...(d.command === undefined ? {} : { command: d.command }),
    ...(d.reply?.code === undefined ? {} : { code: d.reply.code }),
    ...(d.reply?.enhancedCode === undefined ? {} : { enhancedCode: d.reply.enhancedCode }),
    ...(d.reply?.serverText === undefined ? {} : { serverText: d.reply.serverText }),
    ...(d.hint === undefined ? {} : { hint: d.hint }),
    ...(cause === undefined ? {} : { cause }),
  })

/** Socket codes that mean the TCP connection itself could not be made. */
const connectCodes = new Set([
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_NODATA",
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "ETIMEDOUT",
])

const outcomeUnknownHint =
  "check the recipient's mailbox or the server's log before sending again; " +
  "spoc-mail does not resend a message whose outcome is unknown"

const outcomeUnknown = (policy: ConnectionPolicy, how: string, cause: unknown) =>
  build(
    policy,
    {
      reason: "OutcomeUnknown",
      phase: "message",
      command: ".",
      detail:
        `${how} after the whole message was sent: the server may or may not have ` + "accepted it",
      hint: outcomeUnknownHint,
    },
    cause,
  )

/** The socket-level code of a nodemailer error (`ECONNREFUSED` under `ESOCKET`). */
const socketCode = (error: SMTPError): string => error.originalCode ?? error.code ?? ""

const asSocketError = (error: SMTPError) => ({ code: socketCode(error), message: error.message })

/** Socket codes after which another address of the same name may still answer. */
const nextAddressCodes = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"])

/**
 * True when the connection failed before TCP was up, at once (refused,
 * unreachable), so the next address of the name is worth a try. A timeout
 * is not: it has used the connection time up.
 */
export const nextAddressMayAnswer = (failure: SessionFailure): boolean =>
  failure.phase === "connect" &&
  !failure.tcpConnected &&
  nextAddressCodes.has(socketCode(failure.error))

/** Maps a failed session step onto a `TransportError`. */
export const fromSession = (
  failure: SessionFailure,
  policy: ConnectionPolicy,
  session: Session,
): TransportError.TransportError => {
  const { error, phase, dotSent } = failure
  const mode = policy.mode
  const reply = parseReply(error.response)
  const lastCommand =
    phase === "connect" || phase === "greeting" ? undefined : session.lastCommand()

  switch (error.code) {
    case "ETIMEDOUT": {
      if (error.timeoutType === "CONNECT_TIMEOUT") {
        if (mode === "SSL_TLS" && failure.tcpConnected) {
          return build(
            policy,
            {
              reason: "GreetingTimeout",
              phase: "tls",
              detail:
                "the server accepted the connection but completed no TLS handshake " +
                `within ${policy.connectionTimeoutMs} ms`,
              hint: TransportFailures.greetingHint(mode),
            },
            error,
          )
        }
        const classified = TransportFailures.classifyConnect({ code: "ETIMEDOUT" })
        return build(
          policy,
          {
            ...classified,
            phase: "connect",
            detail: `${classified.detail} (${policy.connectionTimeoutMs} ms)`,
          },
          error,
        )
      }
      if (error.timeoutType === "GREETING_TIMEOUT") {
        return build(
          policy,
          {
            reason: "GreetingTimeout",
            phase: "greeting",
            detail: `the server sent no greeting within ${policy.connectionTimeoutMs} ms`,
            hint: TransportFailures.greetingHint(mode),
          },
          error,
        )
      }
      if (error.timeoutType === "UPGRADE_TIMEOUT") {
        return build(
          policy,
          {
            reason: "TlsHandshakeFailed",
            phase: "tls",
            command: "STARTTLS",
            detail:
              "the TLS handshake after STARTTLS did not finish within " +
              `${policy.connectionTimeoutMs} ms`,
            hint: "the server accepted STARTTLS but did not complete TLS; check its TLS setup",
          },
          error,
        )
      }
      if (dotSent) {
        return outcomeUnknown(policy, `no reply came within ${policy.commandTimeoutMs} ms`, error)
      }
      return build(
        policy,
        {
          reason: "CommandTimeout",
          phase,
          command: lastCommand,
          detail: `the server did not answer within ${policy.commandTimeoutMs} ms`,
          hint: "the server is stuck or very slow; if it is only slow, raise mailSmtpTimeout",
        },
        error,
      )
    }

    case "EDNS":
      return build(
        policy,
        { ...TransportFailures.classifyConnect(asSocketError(error)), phase: "connect" },
        error,
      )

    case "ESOCKET": {
      const code = socketCode(error)
      const handshake =
        phase === "tls" ||
        (session.connection.stage === "init" && mode === "SSL_TLS" && !connectCodes.has(code))
      if (handshake) {
        const classified = TransportFailures.classifyTls(error, mode)
        return build(
          policy,
          {
            ...classified,
            phase: "tls",
            command: mode === "SSL_TLS" ? undefined : "STARTTLS",
          },
          error,
        )
      }
      if (phase === "connect") {
        return build(
          policy,
          { ...TransportFailures.classifyConnect(asSocketError(error)), phase: "connect" },
          error,
        )
      }
      if (dotSent) return outcomeUnknown(policy, "the connection was lost", error)
      const lost = TransportFailures.classifyConnect(asSocketError(error))
      return build(
        policy,
        {
          ...lost,
          reason: "ConnectionLost",
          phase,
          command: lastCommand,
          hint: phase === "greeting" ? TransportFailures.greetingHint(mode) : lost.hint,
        },
        error,
      )
    }

    case "ETLS": {
      if (error.command === "STARTTLS" && reply.code !== undefined) {
        return build(
          policy,
          {
            reason: "StartTlsRefused",
            phase: "starttls",
            command: "STARTTLS",
            reply,
            detail: "the server offered STARTTLS but refused it",
            hint:
              "spoc-mail never continues in plain text once STARTTLS was offered: fix the " +
              "server's TLS setup, or use mailSmtpEncryption=SSL_TLS on its TLS port " +
              "(usually 465)",
          },
          error,
        )
      }
      if (/closed unexpectedly/i.test(error.message)) {
        return build(
          policy,
          {
            reason: "TlsHandshakeFailed",
            phase: "tls",
            command: "STARTTLS",
            reply,
            detail: "the server closed the connection during the TLS handshake after STARTTLS",
            hint: "check the server's TLS setup and the TLS versions both sides allow",
          },
          error,
        )
      }
      return build(
        policy,
        {
          ...TransportFailures.classifyTls(error, mode),
          phase: "tls",
          command: "STARTTLS",
        },
        error,
      )
    }

    case "ECONNECTION": {
      if (error.command === "EHLO" || (phase === "greeting" && reply.code !== undefined)) {
        return build(
          policy,
          {
            reason: "GreetingRejected",
            phase: phase === "greeting" ? "greeting" : "ehlo",
            command: error.command === "EHLO" ? session.lastCommand("EHLO") : undefined,
            reply,
            detail: "the server refused the session",
            hint: "the server is not accepting mail now; its text says why",
          },
          error,
        )
      }
      if (dotSent) return outcomeUnknown(policy, "the connection was lost", error)
      return build(
        policy,
        {
          reason: "ConnectionLost",
          phase,
          command: lastCommand,
          reply,
          detail:
            phase === "greeting"
              ? "the server closed the connection before its greeting"
              : "the server closed the connection",
          hint: phase === "greeting" ? TransportFailures.greetingHint(mode) : undefined,
        },
        error,
      )
    }

    case "EPROTOCOL": {
      if (phase === "greeting" && reply.code !== undefined) {
        return build(
          policy,
          {
            reason: "GreetingRejected",
            phase: "greeting",
            reply,
            detail: "the server greeted with a refusal",
            hint: "the server is not accepting mail now; its text says why",
          },
          error,
        )
      }
      if (dotSent) return outcomeUnknown(policy, "the server's reply was not understood", error)
      return build(
        policy,
        {
          reason: "ProtocolViolation",
          phase,
          command: error.command === "HELO" ? session.lastCommand("HELO") : lastCommand,
          reply,
          detail:
            error.command === "HELO"
              ? "the server refused both EHLO and HELO"
              : `the server broke the SMTP protocol (${error.message.split(":")[0]})`,
          hint: "check that mailserver and mailSmtpPort point at an SMTP server",
        },
        error,
      )
    }

    case "EAUTH":
      if (reply.code === undefined) {
        return build(
          policy,
          {
            reason: "InvalidArgument",
            phase: "auth",
            detail: "the credentials are incomplete",
            hint: "set both mailuser and mailpass, or clear mailuser with [EMPTY]",
          },
          error,
        )
      }
      {
        const command = session.lastCommand("AUTH")
        const refusal = TransportFailures.authRefusal(
          { code: reply.code, enhancedCode: reply.enhancedCode, text: reply.serverText ?? "" },
          // `AUTH PLAIN ****` names the mechanism in its first two words.
          command?.split(" ").slice(0, 2).join(" ") ?? "AUTH",
        )
        return build(
          policy,
          {
            reason: refusal.reason,
            phase: "auth",
            command,
            reply,
            detail: refusal.detail,
            hint: refusal.hint,
          },
          error,
        )
      }

    case "EENVELOPE":
      return envelopeError(error, reply, policy, session)

    case "EMESSAGE":
      if (error.command === "DATA" && reply.code !== undefined) {
        return build(
          policy,
          {
            reason: reply.code === 552 ? "MessageTooLarge" : "MessageRejected",
            phase: "message",
            command: ".",
            reply,
            detail: "the server rejected the message after its end",
            hint:
              reply.code === 552
                ? "send smaller attachments, or raise the server's size limit"
                : "the server's text says why",
          },
          error,
        )
      }
      if (error.command === "MAIL FROM") {
        return build(
          policy,
          {
            reason: "MessageTooLarge",
            phase: "mail",
            detail: "the message is larger than the server's SIZE limit",
            hint: "send smaller attachments, or raise the server's size limit",
          },
          error,
        )
      }
      return build(
        policy,
        { reason: "InvalidArgument", phase: "message", detail: error.message },
        error,
      )

    case "ESTREAM":
      return build(
        policy,
        {
          reason: "InvalidArgument",
          phase: "message",
          detail: `the message could not be read: ${error.message}`,
          hint: "check that every attachment file exists and is readable",
        },
        error,
      )

    default:
      if (dotSent) return outcomeUnknown(policy, "the session failed", error)
      return build(
        policy,
        {
          reason: "ProtocolViolation",
          phase,
          command: lastCommand,
          reply,
          detail: `the session failed: ${error.message}`,
        },
        error,
      )
  }
}

const envelopeError = (
  error: SMTPError,
  reply: Reply,
  policy: ConnectionPolicy,
  session: Session,
): TransportError.TransportError => {
  switch (error.command) {
    case "MAIL FROM":
      return build(
        policy,
        {
          reason: reply.code === 552 ? "MessageTooLarge" : "SenderRejected",
          phase: "mail",
          command: session.lastCommand("MAIL FROM"),
          reply,
          detail: "the server rejected the sender",
          hint: "check mailfrom: the server may not allow this sender, or may require AUTH",
        },
        error,
      )
    case "RCPT TO": {
      const rejected = error.rejected ?? []
      return build(
        policy,
        {
          reason: "RecipientsRejected",
          phase: "rcpt",
          command: session.lastCommand("RCPT TO"),
          reply,
          detail:
            "the server rejected every recipient" +
            (rejected.length === 0 ? "" : ` (${rejected.join(", ")})`),
          hint: "check the addresses; a relay may require AUTH for outside domains",
        },
        error,
      )
    }
    case "DATA":
      return build(
        policy,
        {
          reason: "MessageRejected",
          phase: "data",
          command: "DATA",
          reply,
          detail: "the server refused to take the message (DATA)",
          hint: "the server's text says why",
        },
        error,
      )
    default:
      return build(
        policy,
        {
          reason: "InvalidArgument",
          phase: "mail",
          detail: error.message,
          hint: "give envelope addresses without <, >, CR or LF",
        },
        error,
      )
  }
}

/**
 * Maps a failed lookup of the endpoint's name onto a `TransportError` in
 * phase connect, classified as the raw transport's socket errors are.
 */
export const fromLookup = (
  failure: LookupFailure,
  policy: ConnectionPolicy,
): TransportError.TransportError => {
  if (failure._tag === "LookupFailed") {
    const classified = TransportFailures.classifyConnect(failure.error)
    return build(policy, { ...classified, phase: "connect" }, failure.error)
  }
  const classified = TransportFailures.classifyConnect({ code: "EAI_AGAIN" })
  return build(policy, {
    ...classified,
    phase: "connect",
    detail: `${classified.detail}: no answer within ${failure.timeoutMs} ms`,
  })
}

/** The refusals the transport decides itself, from what the session saw. */
export const refusal = {
  startTlsNotOffered: (policy: ConnectionPolicy, command: string | undefined) =>
    build(policy, {
      reason: "StartTlsNotOffered",
      phase: "starttls",
      command,
      detail: "the server does not offer STARTTLS, which STARTTLS_REQUIRED demands",
      hint:
        "the server (or something on the way) does not offer encryption here: use " +
        "mailSmtpEncryption=SSL_TLS if the server has a TLS port (usually 465), or enable " +
        "STARTTLS on the server",
    }),

  startTlsUnused: (policy: ConnectionPolicy, command: string | undefined) =>
    build(policy, {
      reason: "ProtocolViolation",
      phase: "starttls",
      command,
      detail: "the server offered STARTTLS but the session was not encrypted",
      hint: "check the server's EHLO reply with spoc-mail probe",
    }),

  cleartextCredentials: (policy: ConnectionPolicy, command: string | undefined) =>
    build(policy, {
      reason: "CleartextCredentials",
      phase: "starttls",
      command,
      detail:
        "the server does not offer STARTTLS, and the credentials would travel in clear " +
        "text; they were not sent",
      hint:
        "use mailSmtpEncryption=SSL_TLS if the server has a TLS port (usually 465), enable " +
        "STARTTLS on the server, or, for a relay that authorises this controller by its IP " +
        "address, clear mailuser with [EMPTY]",
    }),

  authNotOffered: (policy: ConnectionPolicy, command: string | undefined) =>
    build(policy, {
      reason: "AuthNotOffered",
      phase: "auth",
      command,
      detail: "credentials are set but the server does not offer AUTH; they were not sent",
      hint:
        "if the server is a relay that authorises this controller by its IP address, clear " +
        "mailuser with [EMPTY]; otherwise check mailSmtpEncryption (many servers offer AUTH " +
        "only after STARTTLS)",
    }),

  noUsableMechanism: (
    policy: ConnectionPolicy,
    command: string | undefined,
    offered: ReadonlyArray<string>,
  ) => {
    const token = policy.credentials !== undefined && Transport.isToken(policy.credentials)
    const unusable = TransportFailures.noUsableMechanism(offered, token)
    return build(policy, { ...unusable, phase: "auth", command })
  },

  smtpUtf8Unsupported: (policy: ConnectionPolicy, command: string | undefined) =>
    build(policy, {
      reason: "SmtpUtf8Unsupported",
      phase: "mail",
      command,
      detail: "an envelope address is not ASCII and the server does not offer SMTPUTF8",
      hint: "use ASCII addresses (IDN domains in their xn-- form), or a server with SMTPUTF8",
    }),

  invalidArgument: (
    policy: ConnectionPolicy,
    phase: Phase,
    field: string,
    characters = "CR, LF or NUL",
  ) =>
    build(policy, {
      reason: "InvalidArgument",
      phase,
      detail: `${field} contains ${characters}; nothing was sent`,
      hint: `remove line breaks and control characters from ${field}`,
    }),
}
