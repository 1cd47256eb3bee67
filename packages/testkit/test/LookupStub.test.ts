import dns from "node:dns"
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { type LookupStub, stubLookup } from "../src/LookupStub.ts"

const stubs: Array<LookupStub> = []
const servers: Array<net.Server> = []
afterEach(async () => {
  for (const stub of stubs.splice(0).reverse()) stub.restore()
  await Promise.all(
    servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))),
  )
})

const stub = (answers: Parameters<typeof stubLookup>[0] = {}) => {
  const installed = stubLookup(answers)
  stubs.push(installed)
  return installed
}

const listen = async (): Promise<number> => {
  const server = net.createServer((socket) => socket.end())
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return (server.address() as net.AddressInfo).port
}

/** What net.connect does with a host: the address it reached, or its error code. */
const connectTo = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.once("connect", () => {
      resolve(`connected to ${socket.remoteAddress}`)
      socket.destroy()
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })

const lookup = (host: string, options: dns.LookupOptions = {}) =>
  new Promise<{ error: NodeJS.ErrnoException | null; address: unknown; family?: number }>(
    (resolve) =>
      dns.lookup(host, options, (error, address, family) =>
        resolve({ error, address, ...(family === undefined ? {} : { family }) }),
      ),
  )

describe("stubLookup", () => {
  it("gives net.connect the address listed for a name, and records the question", async () => {
    const port = await listen()
    const installed = stub({ "SMTP.test": "127.0.0.1" })

    expect(await connectTo("smtp.test.", port)).toBe("connected to 127.0.0.1")
    expect(installed.consulted).toEqual(["smtp.test"])
  })

  it("fails every .invalid name with ENOTFOUND and a listed name with its code", async () => {
    const installed = stub({ "down.spoc-mail.invalid": { error: "EHOSTUNREACH" } })

    expect(await connectTo("nowhere.spoc-mail.invalid", 25)).toBe("ENOTFOUND")
    expect(await connectTo("down.spoc-mail.invalid", 25)).toBe("EHOSTUNREACH")
    expect(installed.consulted).toEqual(["nowhere.spoc-mail.invalid", "down.spoc-mail.invalid"])
  })

  it("answers the forms net.connect asks in: one address, all addresses, one family", async () => {
    stub({ "smtp.test": "127.0.0.2", "v6.test": "::1" })

    expect(await lookup("smtp.test")).toMatchObject({ address: "127.0.0.2", family: 4 })
    expect(await lookup("smtp.test", { all: true })).toMatchObject({
      address: [{ address: "127.0.0.2", family: 4 }],
    })
    expect(await lookup("v6.test", { family: 6 })).toMatchObject({ address: "::1", family: 6 })
    expect((await lookup("v6.test", { family: 4 })).error?.code).toBe("ENOTFOUND")
  })

  it("answers several addresses in order: all of them, the first, or one family's", async () => {
    stub({ "dual.test": ["127.0.0.2", "::1", "127.0.0.1"] })

    expect(await lookup("dual.test", { all: true })).toMatchObject({
      address: [
        { address: "127.0.0.2", family: 4 },
        { address: "::1", family: 6 },
        { address: "127.0.0.1", family: 4 },
      ],
    })
    expect(await lookup("dual.test")).toMatchObject({ address: "127.0.0.2", family: 4 })
    expect(await lookup("dual.test", { family: 6, all: true })).toMatchObject({
      address: [{ address: "::1", family: 6 }],
    })
    expect(() => stubLookup({ "none.test": [] })).toThrow(/no address given/)
  })

  it("never answers a name listed with no answer", async () => {
    const installed = stub({ "silent.test": "no answer" })
    let answered = false

    dns.lookup("silent.test", () => {
      answered = true
    })
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(answered).toBe(false)
    expect(installed.consulted).toEqual(["silent.test"])
  })

  it("leaves other names to the lookup it replaced, and puts that back on restore", async () => {
    const before = dns.lookup
    const installed = stubLookup({ "smtp.test": "127.0.0.1" })

    try {
      expect(dns.lookup).not.toBe(before)
      expect(await lookup("localhost", { family: 4 })).toMatchObject({ address: "127.0.0.1" })
      expect(installed.consulted).toEqual([])
    } finally {
      installed.restore()
    }
    expect(dns.lookup).toBe(before)
  })

  it("refuses an answer that is not an IP address, and stubs nothing", () => {
    const before = dns.lookup
    expect(() => stubLookup({ "smtp.test": "localhost" })).toThrow(/not an IP address/)
    expect(dns.lookup).toBe(before)
  })
})
