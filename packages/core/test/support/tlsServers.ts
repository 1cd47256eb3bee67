/**
 * Loopback TLS servers for the policy tests: each listens on 127.0.0.x port 0
 * and is closed by `closeAll` in afterEach. They accept the handshake and
 * record the server name the client sent.
 */
import * as net from "node:net"
import * as tls from "node:tls"

export interface RunningServer {
  readonly host: string
  readonly port: number
  /** The SNI value of each accepted connection (`false` when none was sent). */
  readonly serverNames: Array<string | false>
}

const open: Array<net.Server> = []
const sockets = new Set<net.Socket>()

const track = (server: net.Server): void => {
  open.push(server)
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
}

export const startTlsServer = (
  options: tls.TlsOptions & { readonly host?: string },
): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const serverNames: Array<string | false> = []
    const server = tls.createServer(options, (socket) => {
      serverNames.push(socket.servername ?? false)
      socket.end()
    })
    server.on("tlsClientError", () => {})
    track(server)
    const host = options.host ?? "127.0.0.1"
    server.once("error", reject)
    server.listen(0, host, () => {
      resolve({ host, port: (server.address() as net.AddressInfo).port, serverNames })
    })
  })

/** A server that greets in plain SMTP, as a STARTTLS port does. */
export const startPlainSmtpServer = (host = "127.0.0.1"): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      socket.on("error", () => {})
      socket.write("220 mail.example.com ESMTP\r\n")
    })
    track(server)
    server.once("error", reject)
    server.listen(0, host, () => {
      resolve({ host, port: (server.address() as net.AddressInfo).port, serverNames: [] })
    })
  })

export const closeAll = async (): Promise<void> => {
  const servers = open.splice(0)
  for (const socket of sockets) socket.destroy()
  sockets.clear()
  await Promise.all(
    servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  )
}

export interface Connected {
  readonly protocol: string | null
  readonly cipher: tls.CipherNameAndProtocol
  readonly socket: tls.TLSSocket
}

/** Connects with exactly the options given, and ends the connection once it is up. */
export const connectWith = (options: tls.ConnectionOptions, port: number): Promise<Connected> =>
  new Promise((resolve, reject) => {
    const socket = tls.connect({ ...options, port })
    socket.setTimeout(10_000, () => socket.destroy(new Error("test connection timed out")))
    socket.once("secureConnect", () => {
      const result = { protocol: socket.getProtocol(), cipher: socket.getCipher(), socket }
      socket.end()
      resolve(result)
    })
    socket.once("error", reject)
  })
