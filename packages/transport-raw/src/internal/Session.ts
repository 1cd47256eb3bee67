/**
 * The SMTP dialogue of one connection, step by step (RFC 5321 3 and 4):
 * greeting, EHLO (HELO when EHLO is refused), STARTTLS per the encryption
 * mode, AUTH, then for each message MAIL, RCPT, DATA and the body; RSET
 * before a reused connection carries another message; QUIT at the end.
 * Every failure becomes a `TransportError` with the phase, the command (AUTH
 * arguments masked), the reply code, enhanced code and server text, and a
 * hint; socket and TLS errors are classified by core's `TransportFailures`
 * so that both transports name the same fault the same way.
 *
 * Encryption follows DESIGN "TLS": NONE never sends STARTTLS; SSL_TLS is TLS
 * from the first byte; STARTTLS upgrades when offered, and an offered
 * STARTTLS that is refused or fails ends the session (QUIT only, never a
 * plain-text continuation); not offered, it goes on in plain text without
 * credentials, and refuses to send credentials in clear; STARTTLS_REQUIRED
 * refuses to go on. Under NONE, credentials are sent as configured: the
 * administrator chose no encryption. After STARTTLS, EHLO is sent again and
 * only the new capabilities count (RFC 3207 4.2).
 *
 * AUTH uses PLAIN (RFC 4616), else LOGIN, for a password, and XOAUTH2 for
 * an access token, only what the server offers; a rejection is final (no
 * retry, to avoid locking the account): a refused token's JSON challenge is
 * answered with an empty line and the token is not sent again.
 *
 * Deadlines: connect, greeting and TLS handshake share `connectionTimeoutMs`
 * (a STARTTLS handshake gets its own `connectionTimeoutMs`); every later
 * reply gets `commandTimeoutMs` from the moment it is awaited; the body
 * fails when the server takes no data for `commandTimeoutMs`. A failure once
 * the end-of-data line was sent is `OutcomeUnknown`: the message may have
 * been delivered and must not be resent blindly.
 */
import {
  type Message,
  type Transport,
  TransportError,
  type TransportError as TransportErrorModule,
  TransportFailures,
  Transport as TransportModule,
} from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Capabilities from "./Capabilities.ts"
import * as Command from "./Command.ts"
import * as MessageSize from "./MessageSize.ts"
import * as Reply from "./Reply.ts"
import {
  type CommandRefused,
  type MessageUnsendable,
  SmtpSocket,
  type SocketError,
} from "./SmtpSocket.ts"

type Policy = Transport.ConnectionPolicy
type Phase = TransportErrorModule.Phase
type Failure = TransportErrorModule.TransportFailure
type Error = TransportError.TransportError

/** One open, greeted (and, per the policy, encrypted and authenticated) connection. */
export interface Session {
  readonly socket: SmtpSocket
  readonly capabilities: Capabilities.Capabilities
  readonly tls: Transport.TlsSession | undefined
  readonly authenticated: boolean
  /** Messages this connection has carried. */
  delivered: number
}

/** What the server did with one message. */
export interface Delivery {
  readonly accepted: ReadonlyArray<string>
  readonly rejected: ReadonlyArray<{ readonly address: string; readonly reply: string }>
  readonly response: string
}

/** How long to wait for the reply to QUIT before closing anyway. */
const quitWaitMs = 2_000

const outcomeUnknownHint =
  "look for the Message-ID in the server's log before sending again; spoc-mail does not " +
  "resend it, so that it is not delivered twice"

// ---------------------------------------------------------------------------------------------
// Errors

const error = (
  policy: Policy,
  reason: Failure,
  phase: Phase,
  detail: string,
  extra: {
    readonly command?: Command.Command | string | undefined
    readonly reply?: Reply.Reply | undefined
    readonly hint?: string | undefined
    readonly cause?: unknown
  } = {},
): Error => {
  const command =
    extra.command === undefined
      ? undefined
      : typeof extra.command === "string"
        ? extra.command
        : Command.display(extra.command)
  const reply = extra.reply
  return new TransportError.TransportError({
    reason,
    phase,
    endpoint: policy.endpoint,
    detail,
    ...(command === undefined ? {} : { command }),
    ...(reply === undefined ? {} : { code: reply.code, serverText: Reply.text(reply) }),
    ...(reply?.enhancedCode === undefined ? {} : { enhancedCode: reply.enhancedCode }),
    ...(extra.hint === undefined ? {} : { hint: extra.hint }),
    ...(extra.cause === undefined ? {} : { cause: extra.cause }),
  })
}

const isTlsError = (cause: unknown): boolean => {
  const code = String((cause as { code?: unknown }).code ?? "")
  return code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS") || code.includes("CERT")
}

/** Where a socket failure happened, which decides its reason. */
type Awaiting = "greeting" | "reply" | "body" | "final"

/** Maps a socket failure, or a refused command, to a TransportError. */
const fromSocket = (
  policy: Policy,
  phase: Phase,
  command: Command.Command | string | undefined,
  failure: SocketError | CommandRefused,
  awaiting: Awaiting,
): Error => {
  if (failure._tag === "CommandRefused") {
    return error(policy, "InvalidArgument", phase, failure.detail, {
      command: failure.verb,
      hint: "remove the line break or NUL character from the setting or address",
    })
  }
  const greetingHint =
    awaiting === "greeting" ? TransportFailures.greetingHint(policy.mode) : undefined

  if (awaiting === "final") {
    const what =
      failure._tag === "SocketTimeout"
        ? `no reply within ${policy.commandTimeoutMs} ms`
        : failure._tag === "ReplyInvalid"
          ? `a reply that is not SMTP (${failure.detail})`
          : "the connection was lost"
    return error(
      policy,
      "OutcomeUnknown",
      phase,
      `${what} after the whole message was sent: the server may or may not have accepted it`,
      {
        command,
        hint: outcomeUnknownHint,
        ...(failure._tag === "SocketFailed" ? { cause: failure.cause } : {}),
      },
    )
  }

  switch (failure._tag) {
    case "SocketTimeout":
      return awaiting === "greeting"
        ? error(
            policy,
            "GreetingTimeout",
            phase,
            `the server sent no greeting within ${policy.connectionTimeoutMs} ms`,
            { hint: greetingHint },
          )
        : awaiting === "body"
          ? error(
              policy,
              "CommandTimeout",
              phase,
              `the server took no data for ${policy.commandTimeoutMs} ms during the message`,
              {
                command,
                hint: "the server or the network is stuck; raise mailSmtpTimeout if slow",
              },
            )
          : error(
              policy,
              "CommandTimeout",
              phase,
              `the server did not reply within ${policy.commandTimeoutMs} ms`,
              { command, hint: "the server is stuck or slow; raise mailSmtpTimeout if only slow" },
            )
    case "SocketClosed":
      return error(policy, "ConnectionLost", phase, "the server closed the connection", {
        command,
        hint: greetingHint,
      })
    case "ReplyInvalid":
      return error(
        policy,
        "ProtocolViolation",
        phase,
        `the server's reply is not SMTP: ${failure.detail}`,
        { command, hint: greetingHint ?? "check that this host and port is an SMTP server" },
      )
    case "SocketFailed": {
      const classified = isTlsError(failure.cause)
        ? TransportFailures.classifyTls(failure.cause, policy.mode)
        : TransportFailures.classifyConnect(failure.cause)
      return error(policy, classified.reason, phase, classified.detail, {
        command,
        hint:
          classified.reason === "ConnectionLost" && greetingHint !== undefined
            ? greetingHint
            : classified.hint,
        cause: failure.cause,
      })
    }
  }
}

/** Maps a failure to connect (and, for SSL_TLS, to finish the handshake). */
const fromConnect = (policy: Policy, failure: SocketError): Error => {
  const stage = failure._tag === "ReplyInvalid" ? "io" : failure.stage
  if (failure._tag === "SocketTimeout") {
    return stage === "connect"
      ? error(
          policy,
          "ConnectTimeout",
          "connect",
          `the connection was not established within ${policy.connectionTimeoutMs} ms`,
          { hint: TransportFailures.classifyConnect({ code: "ETIMEDOUT" }).hint },
        )
      : error(
          policy,
          "GreetingTimeout",
          "tls",
          `the server did not finish the TLS handshake within ${policy.connectionTimeoutMs} ms`,
          { hint: TransportFailures.greetingHint(policy.mode) },
        )
  }
  if (failure._tag === "SocketFailed") {
    const classified =
      stage === "connect"
        ? TransportFailures.classifyConnect(failure.cause)
        : TransportFailures.classifyTls(failure.cause, policy.mode)
    return TransportFailures.toError(
      classified,
      policy.endpoint,
      stage === "connect" ? "connect" : "tls",
      failure.cause,
    )
  }
  if (failure._tag === "SocketClosed" && stage === "tls") {
    return error(
      policy,
      "TlsHandshakeFailed",
      "tls",
      "the server closed the connection during " + "the TLS handshake",
      { hint: TransportFailures.greetingHint("STARTTLS") },
    )
  }
  return fromSocket(policy, stage === "connect" ? "connect" : "tls", undefined, failure, "reply")
}

/** Maps a failed TLS handshake after STARTTLS. */
const fromStartTls = (policy: Policy, failure: SocketError): Error => {
  if (failure._tag === "SocketTimeout") {
    return error(
      policy,
      "TlsHandshakeFailed",
      "tls",
      `the TLS handshake after STARTTLS did not finish within ${policy.connectionTimeoutMs} ms`,
      { hint: "the server accepted STARTTLS but did not start TLS; check the server" },
    )
  }
  if (failure._tag === "SocketFailed") {
    return TransportFailures.toError(
      TransportFailures.classifyTls(failure.cause, policy.mode),
      policy.endpoint,
      "tls",
      failure.cause,
    )
  }
  return error(policy, "TlsHandshakeFailed", "tls", "the TLS handshake after STARTTLS failed", {
    hint: "the server accepted STARTTLS but did not start TLS; check the server",
  })
}

const fromUnsendable = (policy: Policy, failure: MessageUnsendable): Error =>
  error(policy, "InvalidArgument", "message", `the message cannot be sent: ${failure.detail}`, {
    hint: "nothing was delivered; check the attachments the message names",
    cause: failure.cause,
  })

// ---------------------------------------------------------------------------------------------
// Steps

/** Waits for a reply to `command`, at most `commandTimeoutMs` from now. */
const reply = (
  socket: SmtpSocket,
  policy: Policy,
  phase: Phase,
  command: Command.Command | string,
  awaiting: Awaiting = "reply",
): Effect.Effect<Reply.Reply, Error> =>
  Effect.suspend(() => socket.read(Date.now() + policy.commandTimeoutMs)).pipe(
    Effect.mapError((failure) => fromSocket(policy, phase, command, failure, awaiting)),
  )

/** Writes commands (several at once under PIPELINING); errors name `label` or the first. */
const send = (
  socket: SmtpSocket,
  policy: Policy,
  phase: Phase,
  commands: ReadonlyArray<Command.Command>,
  label: Command.Command | string | undefined = commands[0],
): Effect.Effect<void, Error> =>
  socket
    .send(commands)
    .pipe(Effect.mapError((failure) => fromSocket(policy, phase, label, failure, "reply")))

/** Writes one command and waits for its reply; errors name `label` or the command. */
const exchange = (
  socket: SmtpSocket,
  policy: Policy,
  phase: Phase,
  command: Command.Command,
  label: Command.Command | string = command,
): Effect.Effect<Reply.Reply, Error> =>
  send(socket, policy, phase, [command], label).pipe(
    Effect.andThen(reply(socket, policy, phase, label)),
  )

/** EHLO, or HELO when the server does not know EHLO (RFC 5321 4.1.4). */
const hello = (
  socket: SmtpSocket,
  policy: Policy,
): Effect.Effect<Capabilities.Capabilities, Error> =>
  Effect.gen(function* () {
    const ehlo = Command.ehlo(policy.clientName)
    const ehloReply = yield* exchange(socket, policy, "ehlo", ehlo)
    if (Reply.isPositive(ehloReply)) return Capabilities.fromEhlo(ehloReply)
    if (ehloReply.code < 500) {
      return yield* error(policy, "GreetingRejected", "ehlo", "the server refused EHLO", {
        command: ehlo,
        reply: ehloReply,
        hint: "the server is refusing sessions now; try again later",
      })
    }

    const helo = Command.helo(policy.clientName)
    const heloReply = yield* exchange(socket, policy, "ehlo", helo)
    if (Reply.isPositive(heloReply)) return Capabilities.none
    return yield* error(policy, "GreetingRejected", "ehlo", "the server refused EHLO and HELO", {
      command: helo,
      reply: heloReply,
      hint: "the server may not accept this client's name or address; check its access rules",
    })
  })

/** STARTTLS per the mode; returns the capabilities that count and the TLS session. */
const secure = (
  socket: SmtpSocket,
  policy: Policy,
  offered: Capabilities.Capabilities,
): Effect.Effect<
  { capabilities: Capabilities.Capabilities; tls: Transport.TlsSession | undefined },
  Error
> =>
  Effect.gen(function* () {
    if (policy.mode === "SSL_TLS") {
      return {
        capabilities: offered,
        tls: TransportModule.describeTlsSocket(socket.secure!, "SSL_TLS"),
      }
    }
    if (policy.mode === "NONE") return { capabilities: offered, tls: undefined }

    if (!offered.startTls) {
      if (policy.mode === "STARTTLS_REQUIRED") {
        return yield* error(
          policy,
          "StartTlsNotOffered",
          "starttls",
          "the server did not offer STARTTLS, and the mode is STARTTLS_REQUIRED",
          {
            hint:
              "something may strip STARTTLS on the way (check firewalls that inspect SMTP), " +
              "or the server lacks TLS; use SSL_TLS on the server's port 465 if it has one",
          },
        )
      }
      if (policy.credentials !== undefined) {
        return yield* error(
          policy,
          "CleartextCredentials",
          "starttls",
          "the server did not offer STARTTLS, so the password would travel in clear text; " +
            "nothing was sent",
          {
            hint:
              "enable STARTTLS on the server, use SSL_TLS (usually port 465), or clear mailuser " +
              "with [EMPTY] if the server relays for this host without a login",
          },
        )
      }
      return { capabilities: offered, tls: undefined }
    }

    const startTls = yield* exchange(socket, policy, "starttls", Command.startTls)
    if (startTls.code !== 220) {
      return yield* error(policy, "StartTlsRefused", "starttls", "the server refused STARTTLS", {
        command: Command.startTls,
        reply: startTls,
        hint:
          "the server offers STARTTLS but cannot start it (often a missing certificate); " +
          "fix the server, or use SSL_TLS if it has a port for that",
      })
    }
    yield* Effect.suspend(() =>
      socket.startTls(policy.tls, Date.now() + policy.connectionTimeoutMs),
    ).pipe(Effect.mapError((failure) => fromStartTls(policy, failure)))
    const tls = TransportModule.describeTlsSocket(socket.secure!, "STARTTLS")
    const capabilities = yield* hello(socket, policy)
    return { capabilities, tls }
  })

const credentialsHint =
  "write mailuser, mailpass and the token without line breaks or control codes"

/**
 * AUTH when credentials are set: XOAUTH2 for an access token, else PLAIN,
 * else LOGIN for a password; true when authenticated.
 */
const authenticate = (
  socket: SmtpSocket,
  policy: Policy,
  capabilities: Capabilities.Capabilities,
): Effect.Effect<boolean, Error> =>
  Effect.gen(function* () {
    const credentials = policy.credentials
    if (credentials === undefined) return false
    const relayHint =
      "if the server relays mail for this host without a login (an IP-authorised relay), " +
      "clear mailuser with [EMPTY]"

    if (!capabilities.auth) {
      return yield* error(
        policy,
        "AuthNotOffered",
        "auth",
        "mailuser is set, but the server does not offer AUTH; nothing was sent",
        { hint: `${relayHint}; otherwise use the server's submission port` },
      )
    }
    const mechanism = TransportModule.mechanismsFor(credentials).find((m) =>
      capabilities.authMechanisms.has(m),
    )
    if (mechanism === undefined) {
      const unusable = TransportFailures.noUsableMechanism(
        [...capabilities.authMechanisms],
        TransportModule.isToken(credentials),
      )
      return yield* error(policy, unusable.reason, "auth", unusable.detail, {
        hint: unusable.hint,
      })
    }

    const shown = `AUTH ${mechanism}`
    const rejected = (answer: Reply.Reply, challenge?: string): Error => {
      const refusal = TransportFailures.authRefusal(
        { code: answer.code, enhancedCode: answer.enhancedCode, text: Reply.text(answer) },
        shown,
      )
      const said = challenge === undefined ? "" : ` (the server's challenge: ${challenge})`
      return error(policy, refusal.reason, "auth", `${refusal.detail}${said}`, {
        command: shown,
        reply: answer,
        hint: refusal.hint,
      })
    }
    const step = (command: Command.Command, expected: number) =>
      exchange(socket, policy, "auth", command, shown).pipe(
        Effect.flatMap((answer) =>
          answer.code === expected ? Effect.succeed(answer) : Effect.fail(rejected(answer)),
        ),
      )
    const first = (command: Command.Command | Command.Refused) =>
      Command.isRefused(command)
        ? Effect.fail(
            error(policy, "InvalidArgument", "auth", command.detail, {
              command: shown,
              hint: credentialsHint,
            }),
          )
        : Effect.succeed(command)

    if (TransportModule.isToken(credentials)) {
      const command = yield* first(Command.authXoauth2(credentials.user, credentials.accessToken))
      const answer = yield* exchange(socket, policy, "auth", command, shown)
      if (answer.code === 235) return true
      if (answer.code !== 334) return yield* Effect.fail(rejected(answer))
      // A refused token gets a 334 with a JSON error; the empty answer asks for the final
      // reply, and the attempt ends there: the same token is never sent twice.
      const final = yield* exchange(socket, policy, "auth", Command.authCancelChallenge, shown)
      return yield* Effect.fail(rejected(final, challengeText(answer)))
    }
    if (mechanism === "PLAIN") {
      yield* step(yield* first(Command.authPlain(credentials.user, credentials.password)), 235)
      return true
    }

    // AUTH LOGIN: a bare command, then the user and the password, each after a 334 prompt.
    yield* step(Command.authLogin, 334)
    yield* step(Command.authResponse(Redacted.make(credentials.user)), 334)
    yield* step(Command.authResponse(credentials.password), 235)
    return true
  })

/** The JSON an XOAUTH2 challenge carries in base64, when it is printable text. */
const challengeText = (answer: Reply.Reply): string | undefined => {
  const encoded = Reply.text(answer).trim()
  if (!/^[A-Za-z0-9+/]+=*$/.test(encoded)) return undefined
  const decoded = Buffer.from(encoded, "base64").toString("utf8")
  return /^[\x20-\x7e]{1,300}$/.test(decoded) ? decoded : undefined
}

/**
 * Refuses, before anything is sent, a client name, credentials or envelope
 * address holding CR, LF or NUL.
 */
export const refuseUnsafe = (
  message: Message.ComposedMessage,
  policy: Policy,
): Error | undefined => {
  const checks: ReadonlyArray<readonly [Phase, Command.Command]> = [
    ["ehlo", Command.ehlo(policy.clientName)],
    ["mail", Command.mailFrom(message.envelope.from)],
    ...message.envelope.to.map((to) => ["rcpt", Command.rcptTo(to)] as const),
  ]
  for (const [phase, command] of checks) {
    const encoded = Command.encode(command)
    if ("_tag" in encoded) {
      return error(policy, "InvalidArgument", phase, `${encoded.detail}; nothing was sent`, {
        command: command.verb,
        hint: "remove the line break or NUL character from the setting or address",
      })
    }
  }
  const credentials = policy.credentials
  if (credentials !== undefined) {
    // Building the first AUTH command checks the user and the secret as it will be sent.
    const login = TransportModule.isToken(credentials)
      ? Command.authXoauth2(credentials.user, credentials.accessToken)
      : Command.authPlain(credentials.user, credentials.password)
    if (Command.isRefused(login)) {
      return error(policy, "InvalidArgument", "auth", `${login.detail}; nothing was sent`, {
        hint: credentialsHint,
      })
    }
  }
  return undefined
}

/**
 * Opens a session: connects, reads the greeting, says EHLO, secures the
 * connection per the mode and authenticates. On failure the connection is
 * closed: with QUIT when it is still in step, at once otherwise.
 */
export const open = (policy: Policy, limits: Reply.ReplyLimits): Effect.Effect<Session, Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + policy.connectionTimeoutMs
    const target = {
      host: policy.endpoint.host,
      port: policy.endpoint.port,
      tls: policy.mode === "SSL_TLS" ? policy.tls : undefined,
    }
    const socket = yield* SmtpSocket.open(target, deadline, limits).pipe(
      Effect.mapError((failure) => fromConnect(policy, failure)),
    )

    return yield* Effect.gen(function* () {
      const greeting = yield* socket
        .read(deadline)
        .pipe(
          Effect.mapError((failure) =>
            fromSocket(policy, "greeting", undefined, failure, "greeting"),
          ),
        )
      if (greeting.code !== 220) {
        return yield* error(
          policy,
          "GreetingRejected",
          "greeting",
          "the server refused the session",
          {
            reply: greeting,
            hint:
              greeting.code === 421
                ? "the server is busy or closing; the backup server is tried when one is set"
                : "the server does not accept mail from this host; check its access rules",
          },
        )
      }

      const offered = yield* hello(socket, policy)
      const { capabilities, tls } = yield* secure(socket, policy, offered)
      const authenticated = yield* authenticate(socket, policy, capabilities)
      return { socket, capabilities, tls, authenticated, delivered: 0 } satisfies Session
    }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : leave(socket, exit))))
  })

/** Closes after a failure: QUIT when the dialogue is still in step, at once otherwise. */
const leave = <A, E>(socket: SmtpSocket, exit: Exit.Exit<A, E>): Effect.Effect<void> =>
  Exit.hasInterrupts(exit) ? Effect.sync(() => socket.destroy()) : socket.quit(quitWaitMs)

/** RSET before a reused connection carries another message; fails when it is not in step. */
export const reset = (session: Session, policy: Policy): Effect.Effect<void, Error> =>
  exchange(session.socket, policy, "mail", Command.rset).pipe(
    Effect.flatMap((answer) =>
      Reply.isPositive(answer)
        ? Effect.void
        : Effect.fail(
            error(policy, "ProtocolViolation", "mail", "the server refused RSET", {
              command: Command.rset,
              reply: answer,
            }),
          ),
    ),
  )

/** Ends the session politely (QUIT), or at once when the connection is not in step. */
export const close = (session: Session): Effect.Effect<void> => session.socket.quit(quitWaitMs)

/** Closes the session without a word. */
export const destroy = (session: Session): void => session.socket.destroy()

/**
 * Sends one message over an open session: MAIL with the parameters the
 * server's extensions call for, RCPT for every recipient (pipelined when
 * offered), DATA, the body and the end-of-data line. Recipients the server
 * refuses are reported in the result; the send fails only when it refuses
 * them all. On failure the session must not be reused.
 */
export const deliver = (
  session: Session,
  message: Message.ComposedMessage,
  policy: Policy,
): Effect.Effect<Delivery, Error> =>
  Effect.gen(function* () {
    const { socket, capabilities } = session
    const { from, to } = message.envelope

    if (message.needsSmtpUtf8 && !capabilities.smtpUtf8) {
      return yield* error(
        policy,
        "SmtpUtf8Unsupported",
        "mail",
        "an envelope address is not ASCII and the server does not offer SMTPUTF8; " +
          "nothing was sent",
        { hint: "use ASCII addresses (a domain in its xn-- form), or a server with SMTPUTF8" },
      )
    }

    // RFC 1870: measure the message and refuse it here when it is over the declared limit.
    const parameters: Array<string> = []
    if (capabilities.size !== undefined && capabilities.size > 0) {
      const size = yield* MessageSize.measure(message).pipe(
        Effect.mapError((cause) =>
          error(policy, "InvalidArgument", "message", `the message cannot be read: ${cause}`, {
            hint: "nothing was sent; check the attachments the message names",
            cause,
          }),
        ),
      )
      if (size > capabilities.size) {
        return yield* error(
          policy,
          "MessageTooLarge",
          "mail",
          `the message is ${size} octets, over the server's limit of ${capabilities.size}`,
          { hint: "send smaller attachments, or ask for a higher limit on the server" },
        )
      }
      parameters.push(`SIZE=${size}`)
    }
    if (capabilities.eightBitMime) parameters.push("BODY=8BITMIME")
    if (message.needsSmtpUtf8) parameters.push("SMTPUTF8")

    // The envelope: MAIL, then RCPT for each recipient, in one write under PIPELINING (RFC 2920).
    const mail = Command.mailFrom(from, parameters)
    const recipients = to.map((address) => ({ address, command: Command.rcptTo(address) }))
    if (capabilities.pipelining) {
      yield* send(socket, policy, "mail", [mail, ...recipients.map((r) => r.command)])
    } else {
      yield* send(socket, policy, "mail", [mail])
    }
    const mailReply = yield* reply(socket, policy, "mail", mail)
    if (!Reply.isPositive(mailReply)) {
      return yield* error(
        policy,
        "SenderRejected",
        "mail",
        `the server refused the sender <${from}>`,
        {
          command: mail,
          reply: mailReply,
          hint:
            mailReply.code >= 500
              ? "check mailfrom: the server may accept only its own domains or the logged-in user"
              : "the server refused for now; it may accept later",
        },
      )
    }

    const accepted: Array<string> = []
    const rejected: Array<{ address: string; reply: string; answer: Reply.Reply }> = []
    for (const recipient of recipients) {
      const answer = capabilities.pipelining
        ? yield* reply(socket, policy, "rcpt", recipient.command)
        : yield* exchange(socket, policy, "rcpt", recipient.command)
      if (Reply.isPositive(answer)) accepted.push(recipient.address)
      else rejected.push({ address: recipient.address, reply: Reply.format(answer), answer })
    }
    if (accepted.length === 0) {
      // A temporary refusal among them makes the whole failure temporary: another try may pass.
      const shown = rejected.find((r) => r.answer.code < 500) ?? rejected[0]!
      return yield* error(
        policy,
        "RecipientsRejected",
        "rcpt",
        `the server refused every recipient: ${rejected
          .map((r) => `<${r.address}> (${r.answer.code})`)
          .join(", ")}`,
        {
          command: Command.rcptTo(shown.address),
          reply: shown.answer,
          hint: "check the recipients' addresses; a relay may also refuse foreign domains",
        },
      )
    }

    // DATA, the body, and exactly one end-of-data line.
    const dataReply = yield* exchange(socket, policy, "data", Command.data)
    if (dataReply.code !== 354) {
      return yield* error(policy, "MessageRejected", "data", "the server refused DATA", {
        command: Command.data,
        reply: dataReply,
      })
    }
    yield* socket
      .transfer(message.stream(), policy.commandTimeoutMs)
      .pipe(
        Effect.mapError((failure) =>
          failure._tag === "MessageUnsendable"
            ? fromUnsendable(policy, failure)
            : fromSocket(policy, "message", "DATA", failure, "body"),
        ),
      )
    const final = yield* reply(socket, policy, "message", Command.data, "final")
    if (!Reply.isPositive(final)) {
      const tooLarge = final.code === 552 || final.enhancedCode === "5.3.4"
      return yield* error(
        policy,
        tooLarge ? "MessageTooLarge" : "MessageRejected",
        "message",
        `the server refused the message${tooLarge ? " as too large" : ""}`,
        { command: "DATA", reply: final },
      )
    }

    session.delivered += 1
    return {
      accepted,
      rejected: rejected.map(({ address, reply }) => ({ address, reply })),
      response: Reply.format(final),
    }
  })
