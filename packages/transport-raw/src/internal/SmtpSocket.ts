/**
 * The thin socket adapter under the SMTP dialogue: it opens a TCP or TLS
 * connection, feeds every byte received to the reply parser, hands out
 * complete replies, writes commands, upgrades to TLS after STARTTLS and
 * streams the message body with backpressure. It knows no SMTP policy: which
 * command comes when, and what a reply means, is `Session.ts`'s job.
 *
 * Every wait has an absolute deadline, fixed when the wait starts, so a
 * server that drips one byte at a time cannot stretch it. Any failure (a
 * timeout, an error, the peer closing, a reply that is not SMTP) is kept and
 * marks the connection as unusable for good: later reads fail at once and
 * the pool never takes it back.
 *
 * `send` is the one place commands are written: it encodes them (refusing
 * CR, LF and NUL before any byte leaves), logs each with its secrets masked
 * at debug level (`C: ...`), then writes. Replies are logged as they are
 * handed out (`S: ...`). Nothing else is logged, and nothing goes to stdout.
 *
 * After STARTTLS everything received before the handshake is dropped (RFC
 * 3207 4.2): the reply queue and the parser's partial input are emptied and
 * the plain socket's reader is detached before the TLS socket takes over.
 *
 * `open` waits for a connection ready for the greeting. `start` hands the
 * connection out at once for a caller that waits stage by stage (the probe,
 * with `connected`, `secured` and `read`) and wants to see each handshake
 * before Node's verdict on the chain (`Hooks.onHandshake`). Verification
 * itself is never touched: the TLS options are passed on unchanged, and a
 * chain Node refuses ends the connection before `secured` succeeds.
 */
import * as net from "node:net"
import type { Readable } from "node:stream"
import * as tls from "node:tls"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Command from "./Command.ts"
import { DataEncoder, LineTooLong } from "./DataEncoder.ts"
import { type Reply, ReplyParser, type ReplyLimits } from "./Reply.ts"

/** How far the connection got: TCP connecting, TLS handshaking, or established. */
export type Stage = "connect" | "tls" | "io"

/** A deadline passed before the awaited event. */
export class SocketTimeout extends Data.TaggedError("SocketTimeout")<{ readonly stage: Stage }> {}

/** The peer closed the connection. */
export class SocketClosed extends Data.TaggedError("SocketClosed")<{ readonly stage: Stage }> {}

/** The socket (or TLS) reported an error. */
export class SocketFailed extends Data.TaggedError("SocketFailed")<{
  readonly stage: Stage
  readonly cause: unknown
}> {}

/** The server sent something that is not an SMTP reply, or too much of it. */
export class ReplyInvalid extends Data.TaggedError("ReplyInvalid")<{ readonly detail: string }> {}

export type SocketError = SocketTimeout | SocketClosed | SocketFailed | ReplyInvalid

/** A command was refused by the encoder: nothing was written. */
export class CommandRefused extends Data.TaggedError("CommandRefused")<{
  readonly verb: string
  readonly detail: string
}> {}

/** The message stream failed or held a line SMTP cannot carry; no end-of-data was sent. */
export class MessageUnsendable extends Data.TaggedError("MessageUnsendable")<{
  readonly detail: string
  readonly cause: unknown
}> {}

export interface Target {
  readonly host: string
  readonly port: number
  /** TLS from the first byte (SSL_TLS) with these options, or plain TCP when absent. */
  readonly tls: tls.ConnectionOptions | undefined
}

/** What a caller may watch that the dialogue itself does not need. */
export interface Hooks {
  /**
   * Called with the TLS socket as each handshake ends (from the first byte
   * or after STARTTLS), before Node verifies the chain and the host name and
   * destroys the connection when they fail: the one moment an untrusted
   * chain can still be read. It may read the socket; it must not write.
   */
  readonly onHandshake?: (socket: tls.TLSSocket) => void
}

const noop = (): void => {}

export class SmtpSocket {
  private socket: net.Socket
  private secureSocket: tls.TLSSocket | undefined
  private readonly parser: ReplyParser
  private queue: Array<Reply> = []
  private failure: SocketError | undefined
  private stage: Stage = "connect"
  private readonly waiters = new Set<() => void>()
  private readonly detachers: Array<() => void> = []
  private readonly startedAt = Date.now()
  private connectMs: number | undefined

  private readonly hooks: Hooks

  private constructor(socket: net.Socket, limits: ReplyLimits, hooks: Hooks) {
    this.socket = socket
    this.hooks = hooks
    this.parser = new ReplyParser(limits)
    if (socket instanceof tls.TLSSocket) this.secureSocket = socket
    this.attach(socket)
  }

  /**
   * Starts connecting, with TLS from the first byte for a TLS target, and
   * returns at once; wait with `connected`, `secured` or `read`. The caller
   * must `destroy` it when done.
   */
  static start(target: Target, limits: ReplyLimits, hooks: Hooks = {}): SmtpSocket {
    const raw =
      target.tls === undefined
        ? net.connect({ host: target.host, port: target.port })
        : tls.connect({ host: target.host, ...target.tls, port: target.port })
    return new SmtpSocket(raw, limits, hooks)
  }

  /**
   * Connects, and for a TLS target finishes the handshake, before `deadline`
   * (epoch ms). The socket is destroyed if the effect fails or is interrupted.
   */
  static open(
    target: Target,
    deadline: number,
    limits: ReplyLimits,
  ): Effect.Effect<SmtpSocket, SocketError> {
    return Effect.callback<SmtpSocket, SocketError>((resume) => {
      const smtp = SmtpSocket.start(target, limits)
      const cancel = smtp.wait(deadline, resume, () => (smtp.stage === "io" ? smtp : undefined))
      return Effect.sync(() => {
        cancel()
        smtp.destroy()
      })
    })
  }

  /** The TLS socket, once TLS is up (implicit or after STARTTLS). */
  get secure(): tls.TLSSocket | undefined {
    return this.secureSocket
  }

  /** False once anything went wrong: the connection must not carry another command. */
  get usable(): boolean {
    return this.failure === undefined && !this.socket.destroyed
  }

  /** Waits for the TCP connection until `deadline` (epoch ms); returns how long it took. */
  connected(deadline: number): Effect.Effect<number, SocketError> {
    return this.waitFor(deadline, () => this.connectMs)
  }

  /**
   * Waits until TLS is up and Node accepted the chain and the host name
   * (after `start` with TLS, or `upgrade`), until `deadline` (epoch ms).
   */
  secured(deadline: number): Effect.Effect<void, SocketError> {
    return this.waitFor(deadline, () => (this.isSecured() ? false : undefined))
  }

  /** Waits for the next complete reply until `deadline` (epoch ms), and logs it. */
  read(deadline: number): Effect.Effect<Reply, SocketError> {
    return this.waitFor(deadline, () => this.queue.shift()).pipe(
      Effect.tap((reply) => Effect.forEach(reply.raw, (line) => Effect.logDebug(`S: ${line}`))),
    )
  }

  /**
   * Encodes and writes commands in one write (several for PIPELINING). Every
   * command is checked before any is written; each is logged, secrets masked.
   * A reply still unread at this point fails the connection (only QUIT may
   * be sent past one).
   */
  send(
    commands: ReadonlyArray<Command.Command>,
    options: { readonly unreadAllowed?: boolean } = {},
  ): Effect.Effect<void, CommandRefused | SocketError> {
    return Effect.gen({ self: this }, function* () {
      const encoded: Array<Command.Encoded> = []
      for (const command of commands) {
        const result = Command.encode(command)
        if ("_tag" in result) {
          return yield* new CommandRefused({ verb: result.verb, detail: result.detail })
        }
        encoded.push(result)
      }
      // A reply nobody asked for puts every later reply out of step (a hostile server, or an
      // idle connection that was told it is closing): the connection is of no further use.
      const unread = this.queue[0]
      if (unread !== undefined && options.unreadAllowed !== true) {
        const shown = unread.raw[0]!.slice(0, 60)
        this.fail(
          new ReplyInvalid({ detail: `the server sent a reply no command asked for: "${shown}"` }),
        )
      }
      if (this.failure !== undefined) return yield* Effect.fail(this.failure)
      for (const command of encoded) yield* Effect.logDebug(`C: ${command.display}`)
      this.socket.write(
        encoded.length === 1 ? encoded[0]!.bytes : Buffer.concat(encoded.map((c) => c.bytes)),
      )
    })
  }

  /**
   * Upgrades to TLS after the server's 220 to STARTTLS, with the handshake
   * done before `deadline`. Whatever was received before is dropped.
   */
  startTls(options: tls.ConnectionOptions, deadline: number): Effect.Effect<void, SocketError> {
    return Effect.suspend(() => {
      this.upgrade(options)
      return this.secured(deadline)
    })
  }

  /**
   * Starts TLS over the plain connection after the server's 220 to STARTTLS
   * and returns at once; wait for it with `secured`. Whatever was received
   * before is dropped. Does nothing once the connection failed.
   */
  upgrade(options: tls.ConnectionOptions): void {
    if (this.failure !== undefined) return
    const plain = this.socket
    this.detach()
    plain.on("error", noop)
    this.queue = []
    this.parser.reset()

    this.stage = "tls"
    const secure = tls.connect({ ...options, socket: plain })
    this.socket = secure
    this.secureSocket = secure
    this.attach(secure)
  }

  /**
   * Streams the message: `source` through the DATA encoder into the socket,
   * pausing while the socket's buffer is full, then the end-of-data line,
   * once. Fails when no buffered data is taken by the server within
   * `stallMs`; memory stays at a few chunks whatever the message size.
   * Succeeds as soon as the end-of-data line is handed to the socket.
   */
  transfer(
    source: Readable,
    stallMs: number,
  ): Effect.Effect<void, SocketError | MessageUnsendable> {
    return Effect.callback<void, SocketError | MessageUnsendable>((resume) => {
      const encoder = new DataEncoder()
      let settled = false
      let stallTimer: ReturnType<typeof setTimeout> | undefined

      const stop = (): void => {
        clearTimeout(stallTimer)
        this.waiters.delete(onFailure)
        this.socket.off("drain", onDrain)
        source.unpipe(encoder)
        source.destroy()
        encoder.destroy()
      }
      const finish = (effect: Effect.Effect<void, SocketError | MessageUnsendable>): void => {
        if (settled) return
        settled = true
        stop()
        resume(effect)
      }
      const onFailure = (): void => {
        if (this.failure !== undefined) finish(Effect.fail(this.failure))
      }
      const onDrain = (): void => {
        clearTimeout(stallTimer)
        encoder.resume()
      }
      const unsendable = (detail: string, cause: unknown): void => {
        // An error after the end (a stream complaining that it was closed) changes nothing.
        if (settled) return
        // No end-of-data was sent, so the server will not deliver; the connection is unusable.
        finish(Effect.fail(new MessageUnsendable({ detail, cause })))
        this.destroy()
      }

      this.waiters.add(onFailure)
      source.on("error", (error) =>
        unsendable(`the message could not be read: ${String(error.message ?? error)}`, error),
      )
      encoder.on("error", (error) =>
        unsendable(error instanceof LineTooLong ? error.message : String(error), error),
      )
      encoder.on("data", (chunk: Buffer) => {
        if (settled || this.socket.write(chunk)) return
        encoder.pause()
        this.socket.once("drain", onDrain)
        stallTimer = setTimeout(() => this.fail(new SocketTimeout({ stage: this.stage })), stallMs)
      })
      encoder.on("end", () => {
        if (settled || this.failure !== undefined) return
        this.socket.write(encoder.endOfData())
        finish(Effect.void)
      })
      if (this.failure !== undefined) {
        finish(Effect.fail(this.failure))
        return
      }
      source.pipe(encoder)
      return Effect.sync(() => {
        settled = true
        stop()
        this.destroy()
      })
    })
  }

  /** Sends QUIT and waits briefly for its reply when the connection is healthy; then closes. */
  quit(waitMs: number): Effect.Effect<void> {
    if (!this.usable) return Effect.sync(() => this.destroy())
    return this.send([Command.quit], { unreadAllowed: true }).pipe(
      Effect.andThen(this.read(Date.now() + waitMs)),
      Effect.ignore,
      Effect.ensuring(Effect.sync(() => this.close())),
    )
  }

  /** Closes the connection without a word (after errors, on interruption). */
  destroy(): void {
    if (this.failure === undefined) this.failure = new SocketClosed({ stage: this.stage })
    this.socket.destroy()
    this.poke()
  }

  /** Lets the process exit while the connection sits idle in the pool. */
  unref(): void {
    this.socket.unref()
  }

  ref(): void {
    this.socket.ref()
  }

  /** Calls `listener` once when the connection fails or closes. */
  onFailure(listener: () => void): () => void {
    const waiter = (): void => {
      if (this.failure === undefined) return
      this.waiters.delete(waiter)
      listener()
    }
    this.waiters.add(waiter)
    return () => this.waiters.delete(waiter)
  }

  /**
   * Waits for `take` (see `wait`) until `deadline`. Interrupted, it destroys
   * the connection: a wait cut short leaves the dialogue out of step for good.
   */
  private waitFor<A>(
    deadline: number,
    take: () => A | undefined | false,
  ): Effect.Effect<A, SocketError> {
    return Effect.callback<A, SocketError>((resume) => {
      const cancel = this.wait(deadline, resume, take)
      return Effect.sync(() => {
        cancel()
        this.destroy()
      })
    })
  }

  private isSecured(): boolean {
    return this.secureSocket !== undefined && this.stage === "io"
  }

  private close(): void {
    if (this.failure === undefined) this.failure = new SocketClosed({ stage: this.stage })
    this.socket.end()
    const socket = this.socket
    setTimeout(() => socket.destroy(), 2_000).unref()
    this.poke()
  }

  /**
   * Resumes with what `take` returns once it returns something other than
   * `undefined` (a value) or `false` (a value of `undefined`), with the kept
   * failure, or with a timeout at `deadline`.
   */
  private wait<A>(
    deadline: number,
    resume: (effect: Effect.Effect<A, SocketError>) => void,
    take: () => A | undefined | false,
  ): () => void {
    let timer: ReturnType<typeof setTimeout> | undefined
    const cancel = (): void => {
      clearTimeout(timer)
      this.waiters.delete(check)
    }
    const done = (effect: Effect.Effect<A, SocketError>): void => {
      cancel()
      resume(effect)
    }
    const check = (): void => {
      const value = take()
      if (value === false) done(Effect.succeed(undefined as A))
      else if (value !== undefined) done(Effect.succeed(value))
      else if (this.failure !== undefined) done(Effect.fail(this.failure))
    }
    this.waiters.add(check)
    check()
    if (!this.waiters.has(check)) return cancel
    timer = setTimeout(
      () => this.fail(new SocketTimeout({ stage: this.stage })),
      Math.max(0, deadline - Date.now()),
    )
    return cancel
  }

  private attach(socket: net.Socket): void {
    // Commands and the end-of-data line are small writes that wait for a reply: Nagle's
    // algorithm would hold each back until the previous segment is acknowledged.
    socket.setNoDelay(true)
    const onData = (chunk: Buffer): void => {
      const result = this.parser.push(chunk)
      if (result._tag === "Invalid") {
        this.fail(new ReplyInvalid({ detail: result.detail }))
        return
      }
      if (result.replies.length > 0) {
        this.queue.push(...result.replies)
        this.poke()
      }
    }
    const onError = (error: Error): void =>
      this.fail(new SocketFailed({ stage: this.stage, cause: error }))
    const onClose = (): void => this.fail(new SocketClosed({ stage: this.stage }))
    const onConnect = (): void => {
      if (this.stage !== "connect") return
      this.connectMs = Date.now() - this.startedAt
      this.stage = socket instanceof tls.TLSSocket ? "tls" : "io"
      this.poke()
    }
    socket.on("data", onData)
    socket.on("error", onError)
    socket.on("close", onClose)
    socket.on("connect", onConnect)
    this.detachers.push(() => {
      socket.off("data", onData)
      socket.off("error", onError)
      socket.off("close", onClose)
      socket.off("connect", onConnect)
    })
    if (socket instanceof tls.TLSSocket) this.watchHandshake(socket)
  }

  private watchHandshake(socket: tls.TLSSocket): void {
    const onHandshake = this.hooks.onHandshake
    // Node's own check of the chain also listens to `secure`, and destroys an untrusted
    // connection: a listener placed before it sees the chain whatever the verdict.
    if (onHandshake !== undefined) socket.prependOnceListener("secure", () => onHandshake(socket))
    // Emitted only once Node accepted the chain and the host name.
    socket.once("secureConnect", () => {
      if (this.socket !== socket) return
      this.stage = "io"
      this.poke()
    })
  }

  private detach(): void {
    for (const detach of this.detachers.splice(0)) detach()
  }

  /** Keeps the first failure, closes the socket unless the peer did, and wakes every waiter. */
  private fail(error: SocketError): void {
    if (this.failure === undefined) this.failure = error
    if (error._tag !== "SocketClosed") this.socket.destroy()
    this.poke()
  }

  private poke(): void {
    for (const waiter of [...this.waiters]) waiter()
  }
}
