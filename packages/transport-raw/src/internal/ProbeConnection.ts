/**
 * The connection under `spoc-mail probe`: TCP or TLS from the first byte,
 * replies through the codec's parser, commands through its encoder, and a
 * STARTTLS upgrade, each wait with an absolute deadline, as in
 * `SmtpSocket.ts`. What it adds is what a probe must see and a sender must
 * not need: the TCP connect time, and what the TLS handshake showed
 * (protocol, cipher, the chain the server presented) even when Node then
 * refuses the chain.
 *
 * Verification stays on: the TLS options come from core's TlsPolicy
 * unchanged. The handshake is read in a listener placed before Node's own
 * check (the `secure` event, which Node's verification also listens to), so
 * the chain is known before Node destroys an untrusted connection; nothing
 * is ever written over such a connection.
 *
 * Commands are logged at debug level (`C: ...`) with AUTH arguments masked,
 * replies as they are handed out (`S: ...`); nothing else is logged. It does
 * not pool, pipeline, or send message data.
 */
import * as net from "node:net"
import * as tls from "node:tls"
import * as Effect from "effect/Effect"
import * as Command from "./Command.ts"
import { defaultLimits, type Reply, ReplyParser } from "./Reply.ts"
import {
  CommandRefused,
  ReplyInvalid,
  SocketClosed,
  SocketFailed,
  type SocketError,
  SocketTimeout,
  type Stage,
} from "./SmtpSocket.ts"

/** What a finished TLS handshake showed, read before Node verified the chain. */
export interface Handshake {
  /** `TLSv1.3`, `TLSv1.2`, ... */
  readonly protocol: string
  /** The negotiated suite by its IANA name. */
  readonly cipher: string
  /** The certificates as DER, leaf first, as Node reports the chain. */
  readonly chain: ReadonlyArray<Uint8Array>
  /** From the start of the handshake to its end. */
  readonly ms: number
}

const noop = (): void => {}

/** Leaf first; a self-signed root is its own issuer, so the walk stops at a repeat. */
const chainOf = (leaf: tls.DetailedPeerCertificate): Array<Uint8Array> => {
  const chain: Array<Uint8Array> = []
  const seen = new Set<string>()
  let current: tls.DetailedPeerCertificate | undefined = leaf
  while (current?.raw !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256)
    chain.push(new Uint8Array(current.raw))
    current = current.issuerCertificate
  }
  return chain
}

export class ProbeConnection {
  /** ms from the start to the TCP connection; `undefined` until connected. */
  tcpMs: number | undefined
  /** The last TLS handshake, once it finished (whether or not the chain verified). */
  handshake: Handshake | undefined
  /** True once Node accepted the chain and the host name. */
  verified = false

  private socket: net.Socket
  private readonly parser = new ReplyParser(defaultLimits)
  private queue: Array<Reply> = []
  private failure: SocketError | undefined
  private stage: Stage = "connect"
  private readonly started = Date.now()
  private readonly waiters = new Set<() => void>()
  private readonly detachers: Array<() => void> = []

  private constructor(socket: net.Socket) {
    this.socket = socket
  }

  /**
   * Starts connecting to `host`:`port`, with TLS from the first byte when
   * `tlsOptions` is given. Wait for it with `connected` (and `secured`).
   */
  static start(
    host: string,
    port: number,
    tlsOptions: tls.ConnectionOptions | undefined,
  ): ProbeConnection {
    const socket =
      tlsOptions === undefined
        ? net.connect({ host, port })
        : tls.connect({ ...tlsOptions, host, port })
    const connection = new ProbeConnection(socket)
    connection.attach(socket)
    socket.once("connect", () => {
      connection.tcpMs = Date.now() - connection.started
      connection.stage = tlsOptions === undefined ? "io" : "tls"
      connection.poke()
    })
    if (socket instanceof tls.TLSSocket) connection.watchHandshake(socket, connection.started)
    return connection
  }

  /** Waits for the TCP connection; returns how long it took. */
  connected(deadline: number): Effect.Effect<number, SocketError> {
    return this.until(deadline, () => this.tcpMs)
  }

  /** Waits until TLS is up and verified (after `start` with TLS, or `startTls`). */
  secured(deadline: number): Effect.Effect<void, SocketError> {
    return this.until(deadline, () => (this.verified ? true : undefined)).pipe(Effect.asVoid)
  }

  /** Waits for the next complete reply until `deadline` (epoch ms), and logs it. */
  read(deadline: number): Effect.Effect<Reply, SocketError> {
    return this.until(deadline, () => this.queue.shift()).pipe(
      Effect.tap((reply) => Effect.forEach(reply.raw, (line) => Effect.logDebug(`S: ${line}`))),
    )
  }

  /** Encodes, logs (secrets masked) and writes one command. */
  send(command: Command.Command): Effect.Effect<void, CommandRefused | SocketError> {
    return Effect.gen({ self: this }, function* () {
      const encoded = Command.encode(command)
      if ("_tag" in encoded) {
        return yield* new CommandRefused({ verb: encoded.verb, detail: encoded.detail })
      }
      if (this.failure !== undefined) return yield* Effect.fail(this.failure)
      yield* Effect.logDebug(`C: ${encoded.display}`)
      this.socket.write(encoded.bytes)
    })
  }

  /**
   * Starts TLS over the plain connection after the server's 220 to STARTTLS;
   * wait for it with `secured`. Whatever was received before is dropped
   * (RFC 3207 4.2).
   */
  startTls(options: tls.ConnectionOptions): void {
    if (this.failure !== undefined) return
    const plain = this.socket
    for (const detach of this.detachers.splice(0)) detach()
    plain.on("error", noop)
    this.queue = []
    this.parser.reset()
    this.stage = "tls"
    const secure = tls.connect({ ...options, socket: plain })
    this.socket = secure
    this.attach(secure)
    this.watchHandshake(secure, Date.now())
  }

  /** Sends QUIT and waits briefly for its reply when the connection is in step; then closes. */
  quit(waitMs: number): Effect.Effect<void> {
    if (this.failure !== undefined || this.socket.destroyed) {
      return Effect.sync(() => this.destroy())
    }
    return this.send(Command.quit).pipe(
      Effect.andThen(this.read(Date.now() + waitMs)),
      Effect.ignore,
      Effect.ensuring(Effect.sync(() => this.destroy())),
    )
  }

  /** Closes the connection without a word. */
  destroy(): void {
    if (this.failure === undefined) this.failure = new SocketClosed({ stage: this.stage })
    this.socket.destroy()
    this.poke()
  }

  private watchHandshake(socket: tls.TLSSocket, from: number): void {
    // Runs before Node's own check of the chain, which destroys an untrusted connection.
    socket.prependOnceListener("secure", () => {
      const cipher = socket.getCipher()
      this.handshake = {
        protocol: socket.getProtocol() ?? "unknown",
        cipher: cipher.standardName ?? cipher.name,
        chain: chainOf(socket.getPeerCertificate(true)),
        ms: Date.now() - from,
      }
    })
    socket.once("secureConnect", () => {
      this.verified = true
      this.stage = "io"
      this.poke()
    })
  }

  /**
   * Resumes with what `take` returns once it is not `undefined`, with the
   * kept failure, or with a timeout at `deadline`, which also ends the
   * connection (a probe never goes on after a wait ran out).
   */
  private until<A>(deadline: number, take: () => A | undefined): Effect.Effect<A, SocketError> {
    return Effect.callback<A, SocketError>((resume) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const cancel = (): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      const check = (): void => {
        const value = take()
        if (value !== undefined) {
          cancel()
          resume(Effect.succeed(value))
        } else if (this.failure !== undefined) {
          cancel()
          resume(Effect.fail(this.failure))
        }
      }
      this.waiters.add(check)
      check()
      if (!this.waiters.has(check)) return
      timer = setTimeout(
        () => this.fail(new SocketTimeout({ stage: this.stage })),
        Math.max(0, deadline - Date.now()),
      )
      return Effect.sync(cancel)
    })
  }

  private attach(socket: net.Socket): void {
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
    socket.on("data", onData)
    socket.on("error", onError)
    socket.on("close", onClose)
    this.detachers.push(() => {
      socket.off("data", onData)
      socket.off("error", onError)
      socket.off("close", onClose)
    })
  }

  /** Keeps the first failure, closes the socket, and wakes every waiter. */
  private fail(error: SocketError): void {
    if (this.failure === undefined) this.failure = error
    this.socket.destroy()
    this.poke()
  }

  private poke(): void {
    for (const waiter of [...this.waiters]) waiter()
  }
}
