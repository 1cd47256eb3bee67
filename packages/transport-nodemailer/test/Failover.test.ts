import * as net from "node:net"
import { Mailer, TlsPolicy } from "@spoc-mail/core"
import { startSmtpServer, type SmtpTestServer } from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { NodemailerTransport } from "../src/index.ts"
import { capturingLogs, settingsWith, trustFrom } from "./support/Harness.ts"

// The primary listens on 127.0.0.1 and the backup on 127.0.0.2, on the same port,
// as the backup shares the primary's port. The backup is started first on port 0.

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

const backupServer = async (): Promise<SmtpTestServer> => {
  const server = await startSmtpServer({ host: "127.0.0.2" })
  closers.push(server.close)
  return server
}

/** A raw TCP listener on 127.0.0.1 at `port` that does what `onConnection` says. */
const primaryListener = async (port: number, onConnection: (socket: net.Socket) => void) => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("error", () => undefined)
    socket.on("close", () => sockets.delete(socket))
    onConnection(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => resolve())
  })
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  )
}

const deliver = async (port: number, values: Record<string, string> = {}) => {
  const settings = settingsWith({
    mailserver: "127.0.0.1",
    mailserverbackup: "127.0.0.2",
    mailSmtpPort: String(port),
    ...values,
  })
  const mailer = Mailer.make(
    settings,
    NodemailerTransport.make(),
    TlsPolicy.make(settings, await trustFrom()),
  )
  const started = Date.now()
  const { result } = await capturingLogs(
    mailer.send({ to: ["rcpt@example.com"], subject: "failover", text: "hello" }),
  )
  return { result, ms: Date.now() - started }
}

describe("the backup server (C13)", () => {
  it("delivers through the backup when the primary's port is closed, at once", async () => {
    const backup = await backupServer()

    const { result, ms } = await deliver(backup.port)

    expect(result._tag).toBe("Success")
    if (result._tag !== "Success") return
    expect(result.success.endpoint).toEqual({
      host: "127.0.0.2",
      port: backup.port,
      role: "backup",
    })
    expect(result.success.attempts.map((a) => a.error?.reason ?? a.outcome)).toEqual([
      "ConnectionRefused",
      "delivered",
    ])
    expect(ms).toBeLessThan(1_000)
    expect(backup.messages).toHaveLength(1)
  })

  it("uses the backup at the connection timeout when the primary never greets", async () => {
    const backup = await backupServer()
    await primaryListener(backup.port, () => undefined)

    const { result, ms } = await deliver(backup.port, { mailSmtpConnectionTimeout: "3000" })

    expect(result._tag).toBe("Success")
    if (result._tag !== "Success") return
    expect(result.success.attempts[0]!.error?.reason).toBe("GreetingTimeout")
    expect(result.success.endpoint.role).toBe("backup")
    expect(ms).toBeGreaterThanOrEqual(2_900)
    expect(ms).toBeLessThan(10_000)
  })

  it("delivers through the backup when the primary greets with 421", async () => {
    const backup = await backupServer()
    await primaryListener(backup.port, (socket) =>
      socket.end("421 4.3.2 Service not available\r\n"),
    )

    const { result } = await deliver(backup.port)

    expect(result._tag).toBe("Success")
    if (result._tag !== "Success") return
    const first = result.success.attempts[0]!.error
    expect(first?.reason).toBe("GreetingRejected")
    expect(first?.code).toBe(421)
    expect(first?.enhancedCode).toBe("4.3.2")
    expect(first?.serverText).toBe("Service not available")
    expect(result.success.endpoint.role).toBe("backup")
  })

  it("fails with both attempts when both servers are closed", async () => {
    const backup = await backupServer()
    const port = backup.port
    await backup.close()

    const { result } = await deliver(port)

    expect(result._tag).toBe("Failure")
    if (result._tag !== "Failure") return
    const error = result.failure
    expect(error._tag).toBe("DeliveryError")
    if (error._tag !== "DeliveryError") return
    expect(error.attempts.map((a) => [a.endpoint.role, a.error?.reason])).toEqual([
      ["primary", "ConnectionRefused"],
      ["backup", "ConnectionRefused"],
    ])
    expect(error.message).toContain("127.0.0.1")
    expect(error.message).toContain("127.0.0.2")
  })

  it("does not try the backup after the primary rejected the credentials", async () => {
    const backup = await backupServer()
    await primaryListener(backup.port, (socket) => {
      socket.write("220 primary ESMTP\r\n")
      socket.on("data", (chunk: Buffer) => {
        const line = chunk.toString()
        if (/^EHLO/i.test(line)) socket.write("250-primary\r\n250 AUTH PLAIN\r\n")
        else if (/^AUTH/i.test(line)) socket.write("535 5.7.8 Authentication failed\r\n")
        else if (/^QUIT/i.test(line)) socket.end("221 bye\r\n")
      })
    })

    const { result } = await deliver(backup.port, {
      mailSmtpEncryption: "NONE",
      mailuser: "printer",
      mailpass: "s3cret-Pass",
    })

    expect(result._tag).toBe("Failure")
    if (result._tag !== "Failure" || result.failure._tag !== "DeliveryError") return
    expect(result.failure.attempts).toHaveLength(1)
    expect(result.failure.last.reason).toBe("AuthRejected")
    expect(backup.connectionCount).toBe(0)
  })
})
