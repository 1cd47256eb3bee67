import dns from "node:dns"
import {
  type LookupStub,
  type SmtpTestServer,
  startSmtpServer,
  stubLookup,
} from "@spoc-mail/testkit"
import { afterEach, describe, expect, it, vi } from "vitest"
import { delivered, failed, policyFor, send } from "./support/Harness.ts"

const servers: Array<SmtpTestServer> = []
const stubs: Array<LookupStub> = []
afterEach(async () => {
  for (const stub of stubs.splice(0).reverse()) stub.restore()
  vi.restoreAllMocks()
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

const server = async (options: Parameters<typeof startSmtpServer>[0] = {}) => {
  const started = await startSmtpServer(options)
  servers.push(started)
  return started
}

const stub = (answers: Parameters<typeof stubLookup>[0]) => {
  const installed = stubLookup(answers)
  stubs.push(installed)
  return installed
}

/** Spies on every way of asking a DNS server directly, as nodemailer would on its own. */
const spyOnDnsQueries = () =>
  (["resolve4", "resolve6"] as const).flatMap((method) => [
    vi.spyOn(dns.Resolver.prototype, method),
    vi.spyOn(dns, method),
  ])

describe("server names go through the system resolver", () => {
  for (const [mode, tlsMode] of [
    ["SSL_TLS", "implicit"],
    ["STARTTLS", "starttls"],
  ] as const) {
    it(`delivers to a named ${mode} server at the looked-up address, SNI naming it`, async () => {
      const running = await server({ tls: tlsMode })
      const lookup = stub({ "smtp.test": running.host })
      const queries = spyOnDnsQueries()

      const outcome = await send(
        await policyFor({ host: "smtp.test", port: running.port }, { mailSmtpEncryption: mode }),
      )

      expect(delivered(outcome).endpoint.host).toBe("smtp.test")
      expect(running.messages.map((m) => m.servername)).toEqual(["smtp.test"])
      expect(lookup.consulted).toEqual(["smtp.test"])
      for (const query of queries) expect(query).not.toHaveBeenCalled()
    })
  }

  it("verifies the certificate against the name, not against the address", async () => {
    // The leaf names 127.0.0.1, the address, but not mail.other.test, the configured name.
    const running = await server({ tls: "implicit", certificate: "server" })
    stub({ "mail.other.test": running.host })

    const error = failed(
      await send(
        await policyFor(
          { host: "mail.other.test", port: running.port },
          { mailSmtpEncryption: "SSL_TLS" },
        ),
      ),
    )

    expect(error.reason).toBe("HostnameMismatch")
    expect(error.phase).toBe("tls")
    expect(error.message).toContain("not for mail.other.test")
    expect(running.messages).toEqual([])
  })

  it("reaches localhost through the hosts file, asking no DNS server", async () => {
    const running = await server()
    const lookup = vi.spyOn(dns, "lookup")
    const queries = spyOnDnsQueries()

    const outcome = await send(await policyFor({ host: "localhost", port: running.port }))

    expect(delivered(outcome).endpoint.host).toBe("localhost")
    expect(lookup.mock.calls.map((call) => call[0])).toContain("localhost")
    for (const query of queries) expect(query).not.toHaveBeenCalled()
  })

  it("looks nothing up for an IP host", async () => {
    const running = await server()
    const lookup = vi.spyOn(dns, "lookup")

    delivered(await send(await policyFor(running)))

    expect(lookup.mock.calls.map((call) => call[0])).not.toContain(running.host)
  })

  it("fails a name that does not resolve with DnsFailure in connect", async () => {
    const lookup = stub({})

    const error = failed(await send(await policyFor({ host: "smtp.spoc-mail.invalid", port: 25 })))

    expect(error.reason).toBe("DnsFailure")
    expect(error.phase).toBe("connect")
    expect(error.endpoint.host).toBe("smtp.spoc-mail.invalid")
    expect(error.hint).toContain("mailserver")
    expect(lookup.consulted).toEqual(["smtp.spoc-mail.invalid"])
  })

  it("fails a lookup that does not answer with DnsFailure at the connection timeout", async () => {
    stub({ "slow.test": "no answer" })

    const outcome = await send(
      await policyFor({ host: "slow.test", port: 25 }, { mailSmtpConnectionTimeout: "500" }),
    )

    const error = failed(outcome)
    expect(error.reason).toBe("DnsFailure")
    expect(error.phase).toBe("connect")
    expect(error.message).toContain("500 ms")
    expect(outcome.ms).toBeGreaterThanOrEqual(450)
    expect(outcome.ms).toBeLessThan(5_000)
  })
})
