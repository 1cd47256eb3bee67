/**
 * The connection under `spoc-mail probe`: an `SmtpSocket` (the same reply
 * queue, deadlines, parser, encoder and STARTTLS upgrade a send uses) waited
 * on stage by stage, plus what a probe must see and a sender does not need:
 * the TCP connect time, and what each TLS handshake showed (protocol,
 * cipher, the chain the server presented) even when Node then refuses the
 * chain.
 *
 * Verification stays on: the TLS options come from core's TlsPolicy
 * unchanged. The handshake is read through `SmtpSocket`'s `onHandshake`
 * hook, which runs before Node's own check, so the chain is known before
 * Node destroys an untrusted connection; `secured` only succeeds once Node
 * accepted it, and nothing is ever written over such a connection.
 *
 * Commands are logged at debug level (`C: ...`) with AUTH arguments masked,
 * replies as they are handed out (`S: ...`); nothing else is logged. It does
 * not pool, pipeline, or send message data. A reply the server sent unasked
 * does not stop a command: the probe reports what the server says.
 */
import type * as tls from "node:tls"
import * as Effect from "effect/Effect"
import * as Command from "./Command.ts"
import { defaultLimits, type Reply } from "./Reply.ts"
import { type CommandRefused, type SocketError, SmtpSocket, type Target } from "./SmtpSocket.ts"

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
  /** The last TLS handshake, once it finished (whether or not the chain verified). */
  handshake: Handshake | undefined

  private readonly socket: SmtpSocket
  /** When the handshake under way started: the connection's start, or STARTTLS. */
  private handshakeFrom = Date.now()

  private constructor(target: Target) {
    this.socket = SmtpSocket.start(target, defaultLimits, {
      onHandshake: (socket) => {
        const cipher = socket.getCipher()
        this.handshake = {
          protocol: socket.getProtocol() ?? "unknown",
          cipher: cipher.standardName ?? cipher.name,
          chain: chainOf(socket.getPeerCertificate(true)),
          ms: Date.now() - this.handshakeFrom,
        }
      },
    })
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
    return new ProbeConnection({ host, port, tls: tlsOptions })
  }

  /** Waits for the TCP connection; returns how long it took. */
  connected(deadline: number): Effect.Effect<number, SocketError> {
    return this.socket.connected(deadline)
  }

  /** Waits until TLS is up and verified (after `start` with TLS, or `startTls`). */
  secured(deadline: number): Effect.Effect<void, SocketError> {
    return this.socket.secured(deadline)
  }

  /** Waits for the next complete reply until `deadline` (epoch ms), and logs it. */
  read(deadline: number): Effect.Effect<Reply, SocketError> {
    return this.socket.read(deadline)
  }

  /** Encodes, logs (secrets masked) and writes one command. */
  send(command: Command.Command): Effect.Effect<void, CommandRefused | SocketError> {
    return this.socket.send([command], { unreadAllowed: true })
  }

  /**
   * Starts TLS over the plain connection after the server's 220 to STARTTLS;
   * wait for it with `secured`. Whatever was received before is dropped
   * (RFC 3207 4.2).
   */
  startTls(options: tls.ConnectionOptions): void {
    this.handshakeFrom = Date.now()
    this.socket.upgrade(options)
  }

  /** Sends QUIT and waits briefly for its reply when the connection is in step; then closes. */
  quit(waitMs: number): Effect.Effect<void> {
    if (!this.socket.usable) return Effect.sync(() => this.destroy())
    return this.send(Command.quit).pipe(
      Effect.andThen(this.read(Date.now() + waitMs)),
      Effect.ignore,
      Effect.ensuring(Effect.sync(() => this.destroy())),
    )
  }

  /** Closes the connection without a word. */
  destroy(): void {
    this.socket.destroy()
  }
}
