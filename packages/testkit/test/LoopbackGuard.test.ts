// The repository's loopback guard (test/loopback-guard.ts, set up for every package by
// vitest.shared.ts), checked from a package's own test run. Each case that makes the guard
// refuse something takes the refusals itself, so that the guard's own check after the
// test finds none.
import { spawn } from "node:child_process"
import dns, { lookup as importedLookup } from "node:dns"
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { type LookupStub, stubLookup } from "../src/LookupStub.ts"

/** The code of every attempt the guard refuses. */
const refused = "ERR_LOOPBACK_GUARD"

interface Violation {
  readonly message: string
  readonly stack: string
}

const guard = (globalThis as Record<symbol, unknown>)[Symbol.for("spoc-mail.loopback-guard")] as
  { readonly takeViolations: () => ReadonlyArray<Violation> } | undefined

const refusals = (): ReadonlyArray<string> =>
  (guard?.takeViolations() ?? []).map((violation) => violation.message)

const stubs: Array<LookupStub> = []
const servers: Array<net.Server> = []
afterEach(async () => {
  for (const stub of stubs.splice(0).reverse()) stub.restore()
  await Promise.all(
    servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))),
  )
})

const listen = async (host: string): Promise<number> => {
  const server = net.createServer((socket) => socket.end())
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return (server.address() as net.AddressInfo).port
}

/** What net.connect does with a target: the address it reached, or its error code. */
const connectTo = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.once("connect", () => {
      resolve(`connected to ${socket.remoteAddress}`)
      socket.destroy()
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })

const lookupCode = (lookup: typeof dns.lookup, host: string): Promise<string | undefined> =>
  new Promise((resolve) => lookup(host, (error) => resolve(error?.code)))

const callbackCode = (call: (done: (error: NodeJS.ErrnoException | null) => void) => void) =>
  new Promise<string | undefined>((resolve) => call((error) => resolve(error?.code ?? undefined)))

const rejectionCode = (promise: Promise<unknown>) =>
  promise.then(
    () => "answered",
    (error: NodeJS.ErrnoException) => error.code,
  )

describe("the loopback guard", () => {
  it("runs in this test process", () => {
    expect(guard).toBeDefined()
  })

  it("refuses a connection to an address outside loopback, naming it", async () => {
    expect(await connectTo("192.0.2.10", 25)).toBe(refused)
    expect(await connectTo("2001:db8::1", 587)).toBe(refused)

    expect(refusals()).toEqual([
      expect.stringContaining("192.0.2.10:25"),
      expect.stringContaining("2001:db8::1:587"),
    ])
  })

  it("lets loopback addresses and localhost through", async () => {
    const port = await listen("127.0.0.1")
    const v6port = await listen("::1")

    expect(await connectTo("127.0.0.1", port)).toBe("connected to 127.0.0.1")
    expect(await connectTo("localhost", port)).toBe("connected to 127.0.0.1")
    expect(await connectTo("::1", v6port)).toBe("connected to ::1")
    expect(refusals()).toEqual([])
  })

  it("refuses to look up a name that would be a DNS query, however it is imported", async () => {
    expect(await lookupCode(dns.lookup, "mail.example.com")).toBe(refused)
    expect(await lookupCode(importedLookup, "relay.example.com")).toBe(refused)
    expect(await rejectionCode(dns.promises.lookup("ms.example.com"))).toBe(refused)
    expect(await connectTo("smtp.example.com", 25)).toBe(refused)

    expect(refusals()).toEqual([
      expect.stringContaining('dns.lookup("mail.example.com")'),
      expect.stringContaining('dns.lookup("relay.example.com")'),
      expect.stringContaining('dns.lookup("ms.example.com")'),
      expect.stringContaining('dns.lookup("smtp.example.com")'),
    ])
  })

  it("refuses every query to a DNS server, localhost included", async () => {
    const resolver = new dns.Resolver()
    const promised = new dns.promises.Resolver()

    expect(await callbackCode((done) => dns.resolve4("localhost", done))).toBe(refused)
    expect(await callbackCode((done) => resolver.resolve6("localhost", done))).toBe(refused)
    expect(await rejectionCode(dns.promises.resolveMx("example.com"))).toBe(refused)
    expect(await rejectionCode(promised.resolve4("example.com"))).toBe(refused)
    expect(await rejectionCode(dns.promises.lookupService("192.0.2.10", 25))).toBe(refused)

    expect(refusals()).toHaveLength(5)
  })

  it("lets a test's stub answer names, and refuses an answer outside loopback", async () => {
    const port = await listen("127.0.0.1")
    const stub = stubLookup({ "smtp.test": "127.0.0.1", "far.test": "192.0.2.7" })
    stubs.push(stub)

    expect(await connectTo("smtp.test", port)).toBe("connected to 127.0.0.1")
    expect(await connectTo("nowhere.invalid", port)).toBe("ENOTFOUND")
    expect(await connectTo("far.test", port)).toBe(refused)

    expect(stub.consulted).toEqual(["smtp.test", "nowhere.invalid", "far.test"])
    expect(refusals()).toEqual([expect.stringContaining("far.test resolved to 192.0.2.7")])
  })

  it("guards Node child processes too: a refused attempt makes them exit with 99", async () => {
    const run = (script: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ["-e", script], { stdio: "pipe" })
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
        child.on("close", (code) => resolve({ code, stdout, stderr }))
      })
    const port = await listen("127.0.0.1")

    const outside = await run(
      "require('node:net').connect(25, '192.0.2.10')" + ".on('error', (e) => console.log(e.code))",
    )
    const inside = await run(
      `require('node:net').connect(${port}, 'localhost')` +
        ".on('connect', function () { console.log('connected'); this.destroy() })",
    )

    expect(outside).toMatchObject({ code: 99, stdout: "ERR_LOOPBACK_GUARD\n" })
    expect(outside.stderr).toContain("192.0.2.10:25")
    expect(inside).toEqual({ code: 0, stdout: "connected\n", stderr: "" })
  })
})
