/**
 * A scripted SMTP server for byte-exact and hostile replies, on node:net and
 * node:tls. Each connection plays a script of steps: send bytes exactly as
 * given, wait for a client line matching a pattern and answer it, take a
 * DATA transfer, wait, close, fall silent, or start TLS on cue with a
 * fixture certificate. The listener itself can be an implicit-TLS port that
 * waits silently for a ClientHello, and can close as soon as it reads plain
 * text or when no handshake comes in time.
 *
 * Everything the client sends is recorded in a transcript: command lines
 * marked as sent before or after TLS, DATA as the exact bytes on the wire
 * (still dot-stuffed), TLS sessions with the SNI name the client sent, and
 * who closed. The server does not interpret SMTP beyond what the script
 * says, except that a QUIT no step expects is answered `221` and closes.
 *
 * It listens on loopback only, on a port the system picks; `close()` ends
 * every socket. For a server that accepts mail like a real MTA, use
 * `SmtpTestServer`.
 */
import { isIP } from "node:net"
import * as net from "node:net"
import { Duplex } from "node:stream"
import * as tls from "node:tls"
import { type CertificateChoice, certificate } from "./Fixtures.ts"

/** Bytes to write: a string is sent as UTF-8. */
export type Bytes = string | Buffer

/** Server-side TLS settings for a STARTTLS step or an implicit-TLS listener. */
export interface ScriptTlsOptions {
  /** Default the `server` fixture leaf. */
  readonly certificate?: CertificateChoice
  readonly minVersion?: tls.SecureVersion
  readonly maxVersion?: tls.SecureVersion
  /** OpenSSL cipher names for TLS 1.2 and below, `:`-separated. */
  readonly ciphers?: string
}

/** One step of a connection's script. Build them with the functions below. */
export type Step =
  | { readonly _tag: "Send"; readonly bytes: Bytes }
  | {
      readonly _tag: "Expect"
      readonly pattern: RegExp
      readonly reply: Bytes | ((line: string) => Bytes) | undefined
    }
  | { readonly _tag: "Data"; readonly reply: Bytes | undefined }
  | { readonly _tag: "Delay"; readonly ms: number }
  | { readonly _tag: "AwaitBytes" }
  | { readonly _tag: "Close" }
  | { readonly _tag: "Silent" }
  | { readonly _tag: "StartTls"; readonly options: ScriptTlsOptions }

/** Lines joined with CRLF, each ending in CRLF: `lines("250-a", "250 b")`. */
export const lines = (...text: ReadonlyArray<string>): string =>
  text.map((line) => `${line}\r\n`).join("")

/** Sends bytes exactly as given (use `lines` for CRLF-terminated replies). */
export const send = (bytes: Bytes): Step => ({ _tag: "Send", bytes })

/**
 * Waits for the next client line that matches `pattern` (case matters only if
 * the pattern says so), then sends `reply`. A line that does not match is
 * recorded and answered `500 5.5.2 unexpected command`; the step keeps waiting.
 */
export const expect = (pattern: RegExp, reply?: Bytes | ((line: string) => Bytes)): Step => ({
  _tag: "Expect",
  pattern,
  reply,
})

/**
 * Takes a DATA transfer up to and including the end-of-data line (`.`), records
 * the bytes as they came (dot-stuffed), then sends `reply`. Send the `354`
 * reply before it, with the `expect(/^DATA/i, ...)` step.
 */
export const data = (reply?: Bytes): Step => ({ _tag: "Data", reply })

/**
 * Waits until the client has sent anything more, without reading it: to answer
 * a ClientHello with plain text, say. The bytes stay for the next step.
 */
export const awaitBytes = (): Step => ({ _tag: "AwaitBytes" })

/** Waits before the next step. */
export const delay = (ms: number): Step => ({ _tag: "Delay", ms })

/** Closes the connection (FIN), then destroys it. */
export const close = (): Step => ({ _tag: "Close" })

/** Never says another word: records whatever the client sends until it goes away. */
export const silent = (): Step => ({ _tag: "Silent" })

/**
 * Starts a TLS handshake as the server, at once: put it right after the step
 * that sends the `220` to STARTTLS. Plain text the client sent after STARTTLS
 * and before its ClientHello is recorded as discarded and never read as SMTP.
 */
export const startTls = (options: ScriptTlsOptions = {}): Step => ({ _tag: "StartTls", options })

/** One thing that happened on a connection. `connection` counts from 1. */
export type TranscriptEntry =
  | {
      readonly kind: "client"
      readonly connection: number
      /** Sent inside TLS. */
      readonly tls: boolean
      /** The line without its line end. */
      readonly line: string
      /** Plain text sent after STARTTLS, before the handshake: never read as SMTP. */
      readonly discarded?: boolean
    }
  | {
      readonly kind: "data"
      readonly connection: number
      readonly tls: boolean
      readonly raw: Buffer
    }
  | {
      readonly kind: "server"
      readonly connection: number
      readonly tls: boolean
      readonly text: string
    }
  | {
      readonly kind: "tls"
      readonly connection: number
      readonly protocol: string
      readonly cipher: string
      /** The SNI name the client sent; `undefined` when it sent none. */
      readonly servername: string | undefined
    }
  | { readonly kind: "tls-failed"; readonly connection: number; readonly error: string }
  | { readonly kind: "closed"; readonly connection: number; readonly by: "client" | "server" }

export interface ImplicitTlsOptions extends ScriptTlsOptions {
  /** Close when the first bytes the client sends are not a TLS handshake. */
  readonly closeOnPlaintext?: boolean
  /** Close when no handshake has finished this long after the connection opened. */
  readonly handshakeTimeoutMs?: number
}

export interface ScriptedSmtpServerOptions {
  /** A loopback address: `127.0.0.1` (default), `127.0.0.2`, `::1`. */
  readonly host?: string
  /**
   * Default 0: a free port. Give the port of a server on another loopback
   * address when two must share one (a primary and its backup).
   */
  readonly port?: number
  /** The steps every connection plays, or a script per connection (numbered from 1). */
  readonly script: ReadonlyArray<Step> | ((connection: number) => ReadonlyArray<Step>)
  /** TLS from the first byte: silent until the client's ClientHello, then the script. */
  readonly implicitTls?: ImplicitTlsOptions
}

export interface ScriptedSmtpServer {
  readonly host: string
  readonly port: number
  /** Everything that happened, in order, across connections. */
  readonly transcript: ReadonlyArray<TranscriptEntry>
  /** The client's command lines (not DATA), optionally of one connection or TLS state only. */
  readonly clientLines: (filter?: {
    readonly connection?: number
    readonly tls?: boolean
  }) => ReadonlyArray<string>
  /** The DATA transfers received, as the bytes on the wire (dot-stuffed, ending `.\r\n`). */
  readonly dataTransfers: ReadonlyArray<Buffer>
  /** How many TCP connections the server has accepted. */
  readonly connectionCount: number
  /** Stops listening and destroys every socket. Safe to call more than once. */
  readonly close: () => Promise<void>
}

/** Bad options for a scripted server; says which option and how to fix it. */
export class ScriptedSmtpServerError extends Error {
  override readonly name = "ScriptedSmtpServerError"
}

const isLoopback = (host: string): boolean =>
  (isIP(host) === 4 && host.startsWith("127.")) || host === "::1"

const tlsRecordHandshake = 0x16
const endOfData = Buffer.from("\r\n.\r\n")

/** A context for the server side of a TLS session. */
const secureContextOf = (options: ScriptTlsOptions): tls.SecureContext => {
  const pair = certificate(options.certificate ?? "server")
  return tls.createSecureContext({
    key: pair.key,
    cert: pair.cert,
    ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion }),
    ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
    ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }),
  })
}

/**
 * A duplex that forwards to the TCP socket: TLS runs on top of it, so bytes
 * already read from the socket can be handed to the handshake or withheld.
 */
const bridgeTo = (
  socket: net.Socket,
): { stream: Duplex; feed: (chunk: Buffer) => void; end: () => void } => {
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      if (socket.destroyed) return callback()
      socket.write(chunk, () => callback())
    },
    final(callback) {
      socket.end()
      callback()
    },
    destroy(error, callback) {
      socket.destroy()
      callback(error)
    },
  })
  return { stream, feed: (chunk) => stream.push(chunk), end: () => stream.push(null) }
}

/** Reads lines and DATA from whatever stream currently carries the session. */
class Reader {
  private buffer = Buffer.alloc(0)
  private ended = false
  private wake: (() => void) | undefined

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk])
    this.notify()
  }

  end(): void {
    this.ended = true
    this.notify()
  }

  /** Hands over what is buffered, for a TLS switch. */
  drain(): Buffer {
    const rest = this.buffer
    this.buffer = Buffer.alloc(0)
    return rest
  }

  /** Resets after a TLS switch: reading continues on the new stream. */
  restart(): void {
    this.ended = false
    this.buffer = Buffer.alloc(0)
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private waitForMore(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve))
  }

  /** Resolves true once any unread byte is buffered; false when the stream ended first. */
  async bytes(): Promise<boolean> {
    for (;;) {
      if (this.buffer.length > 0) return true
      if (this.ended) return false
      await this.waitForMore()
    }
  }

  /** The next line without its line end; `undefined` when the stream ended. */
  async line(): Promise<string | undefined> {
    for (;;) {
      const end = this.buffer.indexOf(0x0a)
      if (end >= 0) {
        const line = this.buffer.subarray(0, end).toString("utf8").replace(/\r$/, "")
        this.buffer = this.buffer.subarray(end + 1)
        return line
      }
      if (this.ended) return undefined
      await this.waitForMore()
    }
  }

  /** A DATA transfer through its end-of-data line; `undefined` when the stream ended first. */
  async data(): Promise<Buffer | undefined> {
    for (;;) {
      const atStart = this.buffer.subarray(0, 3).equals(Buffer.from(".\r\n"))
      const index = atStart ? -2 : this.buffer.indexOf(endOfData)
      if (atStart || index >= 0) {
        const length = index + endOfData.length
        const raw = Buffer.from(this.buffer.subarray(0, length))
        this.buffer = this.buffer.subarray(length)
        return raw
      }
      if (this.ended) return undefined
      await this.waitForMore()
    }
  }
}

/** Starts a scripted server on a loopback address and a free port. */
export const startScriptedSmtpServer = async (
  options: ScriptedSmtpServerOptions,
): Promise<ScriptedSmtpServer> => {
  const host = options.host ?? "127.0.0.1"
  if (!isLoopback(host)) {
    throw new ScriptedSmtpServerError(
      `startScriptedSmtpServer: host "${host}" is not a loopback address; ` +
        "use 127.0.0.1, 127.0.0.2 or ::1",
    )
  }
  const implicit = options.implicitTls
  const implicitContext = implicit === undefined ? undefined : secureContextOf(implicit)

  const transcript: Array<TranscriptEntry> = []
  const dataTransfers: Array<Buffer> = []
  const sockets = new Set<net.Socket>()
  const timers = new Set<NodeJS.Timeout>()
  let connectionCount = 0

  const later = (ms: number, run: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      run()
    }, ms)
    timers.add(timer)
  }

  const serve = (socket: net.Socket): void => {
    connectionCount += 1
    const connection = connectionCount
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on("error", () => {})

    const reader = new Reader()
    let current: net.Socket | tls.TLSSocket = socket
    let secure = false
    let closedByServer = false

    socket.on("close", () => {
      sockets.delete(socket)
      transcript.push({ kind: "closed", connection, by: closedByServer ? "server" : "client" })
      reader.end()
    })

    const onPlainData = (chunk: Buffer) => reader.push(chunk)
    const onPlainEnd = () => reader.end()

    const write = (bytes: Bytes): Promise<void> =>
      new Promise((resolve) => {
        if (current.destroyed || !current.writable) return resolve()
        transcript.push({
          kind: "server",
          connection,
          tls: secure,
          text: typeof bytes === "string" ? bytes : bytes.toString("latin1"),
        })
        current.write(bytes, () => resolve())
      })

    const hangUp = (): void => {
      if (socket.destroyed) return
      closedByServer = true
      current.end()
      later(50, () => socket.destroy())
    }

    const record = (line: string, discarded = false) =>
      transcript.push({
        kind: "client",
        connection,
        tls: secure,
        line,
        ...(discarded ? { discarded } : {}),
      })

    /** Runs TLS as the server over the socket; `firstBytes` are handed to the handshake. */
    const upgrade = (context: tls.SecureContext, firstBytes: Buffer): Promise<boolean> =>
      new Promise((resolve) => {
        socket.off("data", onPlainData)
        socket.off("end", onPlainEnd)
        const bridge = bridgeTo(socket)
        socket.on("data", (chunk: Buffer) => bridge.feed(chunk))
        socket.on("end", () => bridge.end())
        const tlsSocket = new tls.TLSSocket(bridge.stream, {
          isServer: true,
          secureContext: context,
        })
        current = tlsSocket
        reader.restart()
        tlsSocket.on("data", (chunk: Buffer) => reader.push(chunk))
        tlsSocket.on("end", () => reader.end())
        tlsSocket.once("secure", () => {
          const cipher = tlsSocket.getCipher()
          const servername = (tlsSocket as tls.TLSSocket & { servername?: string | false })
            .servername
          transcript.push({
            kind: "tls",
            connection,
            protocol: tlsSocket.getProtocol() ?? "unknown",
            cipher: cipher.standardName ?? cipher.name,
            servername: typeof servername === "string" ? servername : undefined,
          })
          secure = true
          resolve(true)
        })
        let failed = false
        const fail = (reason: string) => {
          if (secure || failed) return
          failed = true
          transcript.push({ kind: "tls-failed", connection, error: reason })
          resolve(false)
        }
        tlsSocket.on("error", (error: Error) => {
          fail(error.message)
          socket.destroy()
        })
        tlsSocket.on("close", () => fail("the connection closed before the handshake finished"))
        if (firstBytes.length > 0) bridge.feed(firstBytes)
      })

    const play = async (steps: ReadonlyArray<Step>): Promise<void> => {
      for (const step of steps) {
        if (socket.destroyed) return
        switch (step._tag) {
          case "Send":
            await write(step.bytes)
            break
          case "Delay":
            await new Promise<void>((resolve) => later(step.ms, resolve))
            break
          case "AwaitBytes":
            if (!(await reader.bytes())) return
            break
          case "Close":
            hangUp()
            return
          case "Silent":
            for (;;) {
              const line = await reader.line()
              if (line === undefined) return
              record(line)
            }
          case "Data": {
            const raw = await reader.data()
            if (raw === undefined) return
            transcript.push({ kind: "data", connection, tls: secure, raw })
            dataTransfers.push(raw)
            if (step.reply !== undefined) await write(step.reply)
            break
          }
          case "Expect": {
            const line = await expectLine(step.pattern)
            if (line === undefined) return
            if (step.reply !== undefined) {
              // Written without awaiting: a StartTls step right after must take over the
              // socket before any byte of the ClientHello is read as a command.
              void write(typeof step.reply === "function" ? step.reply(line) : step.reply)
            }
            break
          }
          case "StartTls": {
            // Whatever the client sent after STARTTLS and before its handshake is plain
            // text the session must never act on (RFC 3207 section 4.2): record it as discarded.
            const pending = reader.drain()
            const hello = pending.length > 0 && pending[0] === tlsRecordHandshake
            if (!hello) {
              for (const line of pending.toString("utf8").split(/\r?\n/)) {
                if (line !== "") record(line, true)
              }
            }
            const ok = await upgrade(
              secureContextOf(step.options),
              hello ? pending : Buffer.alloc(0),
            )
            if (!ok) return
            break
          }
        }
      }

      // After the script: QUIT is answered; anything else is recorded and refused.
      for (;;) {
        const line = await reader.line()
        if (line === undefined) return
        record(line)
        if (/^QUIT\b/i.test(line)) {
          await write("221 2.0.0 Bye\r\n")
          hangUp()
          return
        }
        await write("503 5.5.1 the script has ended\r\n")
      }
    }

    /** The next line matching `pattern`; unmatched lines are refused, QUIT ends the session. */
    const expectLine = async (pattern: RegExp): Promise<string | undefined> => {
      for (;;) {
        const line = await reader.line()
        if (line === undefined) return undefined
        record(line)
        if (pattern.test(line)) return line
        if (/^QUIT\b/i.test(line)) {
          await write("221 2.0.0 Bye\r\n")
          hangUp()
          return undefined
        }
        await write("500 5.5.2 unexpected command\r\n")
      }
    }

    const steps = typeof options.script === "function" ? options.script(connection) : options.script

    if (implicit === undefined || implicitContext === undefined) {
      socket.on("data", onPlainData)
      socket.on("end", onPlainEnd)
      void play(steps)
      return
    }

    // Implicit TLS: silent until the first bytes, which must be a ClientHello.
    if (implicit.handshakeTimeoutMs !== undefined) {
      later(implicit.handshakeTimeoutMs, () => {
        if (!secure) hangUp()
      })
    }
    socket.once("data", (first: Buffer) => {
      if (first[0] !== tlsRecordHandshake && implicit.closeOnPlaintext === true) {
        for (const line of first.toString("utf8").split(/\r?\n/)) if (line !== "") record(line)
        hangUp()
        return
      }
      void upgrade(implicitContext, first).then((ok) => (ok ? play(steps) : undefined))
    })
  }

  const server = net.createServer(serve)
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === "string") {
    throw new ScriptedSmtpServerError("startScriptedSmtpServer: the server has no TCP address")
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
    return closing
  }
  return {
    host,
    port: address.port,
    transcript,
    clientLines: (filter = {}) =>
      transcript.flatMap((entry) =>
        entry.kind === "client" &&
        !entry.discarded &&
        (filter.connection === undefined || entry.connection === filter.connection) &&
        (filter.tls === undefined || entry.tls === filter.tls)
          ? [entry.line]
          : [],
      ),
    dataTransfers,
    get connectionCount() {
      return connectionCount
    },
    close,
  }
}
