import * as net from "node:net"
import * as tls from "node:tls"
import { CipherSuites, type Settings, TrustStore } from "@spoc-mail/core"
import {
  readFixture,
  rootCa,
  Script,
  startScriptedSmtpServer,
  startSmtpServer,
} from "@spoc-mail/testkit"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import { afterEach, describe, expect, it } from "vitest"
import * as Probe from "../src/Probe.ts"

const { lines } = Script

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

const smtp = async (options: Parameters<typeof startSmtpServer>[0]) => {
  const server = await startSmtpServer(options)
  closers.push(server.close)
  return server
}

const scripted = async (options: Parameters<typeof startScriptedSmtpServer>[0]) => {
  const server = await startScriptedSmtpServer(options)
  closers.push(server.close)
  return server
}

/** A port nothing listens on: bound, then released. */
const closedPort = async (): Promise<number> => {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const trustingRoot = TrustStore.fromCertificates(undefined, [
  TrustStore.describe("spoc-test-root", rootCa()),
])
const trustingUnrelated = TrustStore.fromCertificates(undefined, [
  TrustStore.describe("unrelated", readFixture("pki/unrelated-ca.crt", "utf8")),
])

const password = "Tr0ub4dor&3-p€ss"
const user = "svc"

const timeoutMs = 1_500

/** Options for a loopback server; the fallback ports are closed unless a test gives others. */
const optionsFor = async (
  server: { readonly port: number },
  mode: Settings.EncryptionMode,
  overrides: Partial<Probe.ProbeOptions> = {},
): Promise<Probe.ProbeOptions> => ({
  host: "127.0.0.1",
  port: server.port,
  mode,
  connectionTimeoutMs: timeoutMs,
  commandTimeoutMs: timeoutMs,
  clientName: "controller.test",
  tls: {
    tlsVersions: { min: "TLSv1.2", max: "TLSv1.3" },
    allowCustomCipherSuites: false,
    cipherSuites: { suites: [] },
  },
  trust: trustingRoot,
  user: undefined,
  fallbackPorts: { sslTls: await closedPort(), startTls: await closedPort() },
  ...overrides,
})

/** Runs a probe with every log line, debug included, captured. */
const probe = async (options: Probe.ProbeOptions) => {
  const logs: Array<string> = []
  const collector = Logger.make(({ message }) => {
    logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  const started = Date.now()
  const report = await Effect.runPromise(
    Probe.probe(options).pipe(
      Effect.provide(Logger.layer([collector])),
      Effect.provideService(References.MinimumLogLevel, "All"),
    ),
  )
  return { report, logs, ms: Date.now() - started }
}

const accepted = (report: Probe.ProbeReport) =>
  report.versions?.results.filter((r) => r.accepted === true).map((r) => r.version)

describe("probe: each mode against a server speaking it", () => {
  it("SSL_TLS on an implicit-TLS port: works, chain verified, capabilities in TLS", async () => {
    const server = await smtp({ tls: "implicit", certificate: "server" })
    const { report } = await probe(await optionsFor(server, "SSL_TLS"))

    expect(report.check).toEqual({ works: true, failure: undefined, warnings: [] })
    expect(report.listener.kind).toBe("tls-first")
    expect(report.mismatch).toBeUndefined()
    expect(report.recommendation).toMatchObject({
      mode: "SSL_TLS",
      port: server.port,
      status: "works",
      fix: undefined,
    })
    expect(report.recommendation?.caveat).toBeUndefined()
    expect(report.noRecommendation).toBeUndefined()

    const check = report.attempts[0]!
    expect(check.tcp.connected).toBe(true)
    expect(check.greeting).toMatchObject({ kind: "reply", code: 220 })
    expect(check.capabilitiesBeforeTls).toBeUndefined()
    expect(check.capabilitiesAfterTls?.extensions).toContain("PIPELINING")
    expect(check.tls).toMatchObject({ protocol: "TLSv1.3", verified: true, refusal: undefined })
    expect(check.tls?.cipher).toMatch(/^TLS_/)
    expect(check.tls?.chain[0]?.subject).toContain("CN=localhost")
    expect(check.tls?.chain[0]?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    expect(check.tls?.chain.some((c) => c.subject.includes("Intermediate"))).toBe(true)
    expect(report.attempts).toHaveLength(1)
    // Node's defaults on both sides: TLS 1.2 and 1.3.
    expect(accepted(report)).toEqual(["TLSv1.2", "TLSv1.3"])
  })

  it("STARTTLS: capabilities before and after TLS, AUTH offered only after it", async () => {
    const server = await smtp({
      tls: "starttls",
      certificate: "server",
      auth: { user: "svc", password },
    })
    const { report } = await probe(await optionsFor(server, "STARTTLS"))

    expect(report.check.works).toBe(true)
    expect(report.listener.kind).toBe("plain-greeting")
    expect(report.mismatch).toBeUndefined()
    expect(report.recommendation).toMatchObject({ mode: "STARTTLS", port: server.port })

    const check = report.attempts[0]!
    expect(check.mode).toBe("STARTTLS")
    expect(check.capabilitiesBeforeTls?.startTls).toBe(true)
    expect(check.startTlsReply).toMatch(/^220/)
    expect(check.tls?.verified).toBe(true)
    expect(check.capabilitiesAfterTls?.startTls).toBe(false)
    expect(check.auth?.offered).toEqual(["PLAIN", "LOGIN"])
    expect(check.auth?.tried).toBeUndefined()
    // SSL_TLS was tried first on the same port, and met a plain greeting.
    expect(report.attempts[1]).toMatchObject({
      mode: "SSL_TLS",
      purpose: "search",
      failure: { reason: "PlaintextWhereTlsExpected" },
    })
    expect(accepted(report)).toEqual(["TLSv1.2", "TLSv1.3"])
    expect(server.authAttempts).toEqual([])
  })

  it("STARTTLS: only the capabilities after TLS count for AUTH", async () => {
    const server = await scripted({
      script: [
        Script.send(lines("220 mx.test ESMTP")),
        Script.expect(/^EHLO /i, lines("250-mx.test", "250-STARTTLS", "250 AUTH NTLM")),
        Script.expect(/^STARTTLS$/i, lines("220 2.0.0 go ahead")),
        Script.startTls({ certificate: "server" }),
        Script.expect(/^EHLO /i, lines("250-mx.test", "250-AUTH NTLM LOGIN", "250 SIZE 37748736")),
      ],
    })
    const { report } = await probe(await optionsFor(server, "STARTTLS", { user }))

    expect(report.check.works).toBe(true)
    const check = report.attempts[0]!
    expect(check.capabilitiesBeforeTls?.authMechanisms).toEqual(["NTLM"])
    expect(check.capabilitiesAfterTls?.authMechanisms).toEqual(["NTLM", "LOGIN"])
    expect(check.capabilitiesAfterTls?.extensions).toEqual(["AUTH NTLM LOGIN", "SIZE 37748736"])
    expect(check.auth).toEqual({ offered: ["NTLM", "LOGIN"], tried: undefined })
    expect(server.clientLines({ connection: 1 })).toEqual([
      "EHLO controller.test",
      "STARTTLS",
      "EHLO controller.test",
      "QUIT",
    ])
  })

  it("NONE on a plain port: works, recommends NONE only as unencrypted", async () => {
    const server = await smtp({ tls: "none" })
    const { report } = await probe(await optionsFor(server, "NONE"))

    expect(report.check.works).toBe(true)
    expect(report.attempts[0]!.capabilitiesBeforeTls?.greetedWith).toBe("EHLO")
    expect(report.listener.kind).toBe("plain-greeting")
    expect(report.recommendation).toMatchObject({
      mode: "NONE",
      port: server.port,
      status: "unencrypted",
    })
    expect(report.recommendation?.caveat).toMatch(/no encryption.*clear text/)
    expect(report.versions).toBeUndefined()
    // SSL_TLS, STARTTLS on the port, then 465 and 587 (closed here) were all tried.
    expect(report.attempts.map((a) => a.mode)).toEqual([
      "NONE",
      "SSL_TLS",
      "STARTTLS",
      "SSL_TLS",
      "STARTTLS",
    ])
  })

  it("NONE where STARTTLS is offered: works, warns, and recommends STARTTLS", async () => {
    const server = await smtp({ tls: "starttls" })
    const { report } = await probe(await optionsFor(server, "NONE"))

    expect(report.check.works).toBe(true)
    expect(report.check.warnings.join(" ")).toMatch(/offers STARTTLS/)
    expect(report.recommendation).toMatchObject({ mode: "STARTTLS", port: server.port })
  })
})

describe("probe: a port speaking the other mode", () => {
  it("SSL_TLS against a plain greeting: a TLS failure at once, STARTTLS recommended", async () => {
    const server = await smtp({ tls: "starttls", certificate: "server" })
    // A long connection timeout: the failure must come from the plain greeting, not a wait.
    const { report, ms } = await probe(
      await optionsFor(server, "SSL_TLS", { connectionTimeoutMs: 10_000 }),
    )

    expect(report.check.works).toBe(false)
    expect(report.check.failure).toMatchObject({
      phase: "tls",
      reason: "PlaintextWhereTlsExpected",
    })
    expect(report.listener).toMatchObject({ kind: "plain-greeting" })
    expect(report.listener.detail).toMatch(/220 /)
    expect(report.mismatch).toMatch(/greets in plain text.*expects TLS from the first byte/)
    expect(report.recommendation).toMatchObject({ mode: "STARTTLS", port: server.port })
    expect(ms).toBeLessThan(5_000)
  })

  it("STARTTLS against an implicit-TLS listener: silence, then SSL_TLS recommended", async () => {
    const server = await smtp({ tls: "implicit", certificate: "server" })
    const { report, ms } = await probe(await optionsFor(server, "STARTTLS"))

    expect(report.check.failure).toMatchObject({ phase: "greeting", reason: "GreetingTimeout" })
    expect(report.attempts[0]!.greeting).toMatchObject({ kind: "silent" })
    expect(report.listener.kind).toBe("tls-first")
    expect(report.mismatch).toMatch(/TLS ClientHello.*expects a plain greeting.*SSL_TLS port/)
    expect(report.recommendation).toMatchObject({ mode: "SSL_TLS", port: server.port })
    expect(report.versions?.mode).toBe("SSL_TLS")
    // Bounded by the connection timeout, not the command timeout.
    expect(ms).toBeGreaterThanOrEqual(timeoutMs - 100)
    expect(ms).toBeLessThan(timeoutMs * 3)
  })

  it("NONE against a scripted implicit-TLS listener that hangs up on plain text", async () => {
    const server = await scripted({
      implicitTls: { certificate: "server", closeOnPlaintext: true },
      script: [Script.send(lines("220 tls.test ESMTP")), Script.expect(/^EHLO/i, lines("250 ok"))],
    })
    const { report } = await probe(await optionsFor(server, "NONE"))

    expect(report.check.failure?.phase).toBe("greeting")
    expect(report.check.failure?.hint).toMatch(/SSL_TLS/)
    expect(report.listener.kind).toBe("tls-first")
    expect(report.mismatch).toMatch(/SSL_TLS port/)
    expect(report.recommendation).toMatchObject({ mode: "SSL_TLS", port: server.port })
  })

  it.each(["STARTTLS", "SSL_TLS", "NONE"] as const)(
    "a listener that accepts TCP and never speaks (%s): no mode suggested, host and port named",
    async (mode) => {
      const server = await scripted({ script: [Script.silent()] })
      const { report } = await probe(
        await optionsFor(server, mode, { connectionTimeoutMs: 800, commandTimeoutMs: 800 }),
      )

      expect(report.check.failure?.reason).toBe("GreetingTimeout")
      expect(report.listener.kind).toBe("silent")
      expect(report.recommendation).toBeUndefined()
      expect(report.versions).toBeUndefined()
      expect(report.noRecommendation).toMatchObject({ kind: "silent" })
      expect(report.noRecommendation?.detail).toMatch(
        new RegExp(`^nothing answered on port ${server.port} in either mode: it accepts TCP`),
      )
      expect(report.noRecommendation?.fix).toMatch(/^check mailserver and mailSmtpPort /)
      // Both modes were tried there, and no hint suggests either: each failed in this report.
      const here = report.attempts.filter((a) => a.port === server.port)
      expect(new Set(here.map((a) => a.mode === "SSL_TLS"))).toEqual(new Set([true, false]))
      for (const a of here) {
        expect(a.failure?.hint).toMatch(/check mailserver and mailSmtpPort/)
        expect(a.failure?.hint).not.toMatch(/SSL_TLS|STARTTLS/)
      }
      expect(report.check.failure?.hint).toBe(report.attempts[0]!.failure?.hint)
      if (mode !== "SSL_TLS") {
        expect(report.mismatch).toMatch(/does not answer TLS from the first byte either/)
      }
    },
  )

  it("a silent port with a working fallback: the fallback; no hint for the port", async () => {
    const implicit = await smtp({ tls: "implicit", certificate: "server" })
    const server = await scripted({ script: [Script.silent()] })
    const { report } = await probe(
      await optionsFor(server, "STARTTLS", {
        connectionTimeoutMs: 800,
        fallbackPorts: { sslTls: implicit.port, startTls: await closedPort() },
      }),
    )

    expect(report.recommendation).toMatchObject({
      mode: "SSL_TLS",
      port: implicit.port,
      status: "works",
    })
    // "this port may speak TLS from the first byte" was shown false on this very port.
    expect(report.check.failure?.hint).toMatch(/^nothing answered on port \d+ in either mode/)
  })
})

describe("probe: a closed port", () => {
  it("reports the refusal and recommends SSL_TLS on the fallback port that speaks it", async () => {
    const implicit = await smtp({ tls: "implicit", certificate: "server" })
    const port = await closedPort()
    const options = await optionsFor({ port }, "STARTTLS", {
      fallbackPorts: { sslTls: implicit.port, startTls: await closedPort() },
    })
    const { report } = await probe(options)

    expect(report.check.failure).toMatchObject({ phase: "connect", reason: "ConnectionRefused" })
    expect(report.attempts[0]!.tcp).toEqual({ connected: false, ms: undefined })
    expect(report.listener.kind).toBe("unreachable")
    expect(report.mismatch).toBeUndefined()
    expect(report.recommendation).toMatchObject({ mode: "SSL_TLS", port: implicit.port })
    // The closed port is not tried again in the other mode.
    expect(report.attempts.filter((a) => a.port === port)).toHaveLength(1)
  })

  it("recommends STARTTLS on the fallback port when only that one works", async () => {
    const starttls = await smtp({ tls: "starttls", certificate: "server" })
    const options = await optionsFor({ port: await closedPort() }, "SSL_TLS", {
      fallbackPorts: { sslTls: await closedPort(), startTls: starttls.port },
    })
    const { report } = await probe(options)

    expect(report.check.failure?.reason).toBe("ConnectionRefused")
    expect(report.recommendation).toMatchObject({ mode: "STARTTLS", port: starttls.port })
    expect(report.versions?.port).toBe(starttls.port)
  })

  it("recommends nothing when no port answers", async () => {
    const { report, ms } = await probe(
      await optionsFor({ port: await closedPort() }, "SSL_TLS", { connectionTimeoutMs: 10_000 }),
    )

    expect(report.check.failure?.reason).toBe("ConnectionRefused")
    expect(report.recommendation).toBeUndefined()
    expect(report.noRecommendation).toMatchObject({
      kind: "unreachable",
      fix: "check mailserver and mailSmtpPort; is the mail service running?",
    })
    expect(report.noRecommendation?.detail).toMatch(/cannot be reached: .*also tried: SSL_TLS/)
    expect(report.attempts).toHaveLength(3)
    expect(ms).toBeLessThan(5_000)
  })
})

describe("probe: certificates and TLS versions", () => {
  it("shows an untrusted chain without sending a byte over it", async () => {
    const server = await scripted({
      implicitTls: { certificate: "server" },
      script: [Script.send(lines("220 tls.test ESMTP")), Script.silent()],
    })
    const { report } = await probe(
      await optionsFor(server, "SSL_TLS", { trust: trustingUnrelated }),
    )

    expect(report.check.failure).toMatchObject({ phase: "tls", reason: "CertificateUntrusted" })
    const tls = report.attempts[0]!.tls!
    expect(tls.verified).toBe(false)
    expect(tls.refusal?.reason).toBe("CertificateUntrusted")
    expect(tls.chain[0]?.subject).toContain("CN=localhost")
    expect(tls.chain[0]?.issuer).toContain("Intermediate")
    expect(report.recommendation).toMatchObject({
      mode: "SSL_TLS",
      port: server.port,
      status: "certificate-refused",
      reason:
        `the server speaks SSL_TLS on port ${server.port}, but its certificate is refused: ` +
        "the server's certificate is not signed by a trusted CA",
    })
    expect(report.recommendation?.caveat).toMatch(/not signed by a trusted CA/)
    expect(report.recommendation?.fix).toMatch(/add the root CA .*spoc-mail trust import/)
    // Every version's handshake completes, though none verifies.
    expect(accepted(report)).toEqual(["TLSv1.2", "TLSv1.3"])
    expect(server.clientLines()).toEqual([])
  })

  it("names a self-signed server certificate as such", async () => {
    const server = await smtp({
      tls: "implicit",
      certificate: {
        key: readFixture("pki/server.key", "utf8"),
        cert: readFixture("pki/self-signed.crt", "utf8"),
      },
    })
    const { report } = await probe(await optionsFor(server, "SSL_TLS"))

    expect(report.check.failure?.reason).toBe("CertificateUntrusted")
    expect(report.attempts[0]!.tls?.chain).toHaveLength(1)
    expect(report.attempts[0]!.tls?.chain[0]?.selfSigned).toBe(true)
  })

  it("a TLS-1.2-only server: only TLSv1.2 accepted; TLSv1.3 fails, the mode is right", async () => {
    const server = await smtp({
      tls: "implicit",
      certificate: "server",
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.2",
    })
    const { report } = await probe(
      await optionsFor(server, "SSL_TLS", {
        tls: {
          tlsVersions: { min: "TLSv1.3", max: "TLSv1.3" },
          allowCustomCipherSuites: false,
          cipherSuites: { suites: [] },
        },
      }),
    )

    expect(report.check.failure).toMatchObject({ phase: "tls", reason: "TlsVersionMismatch" })
    expect(report.recommendation).toMatchObject({ mode: "SSL_TLS", port: server.port })
    expect(report.attempts[1]?.tls?.protocol).toBe("TLSv1.2")
    expect(report.versions?.results.map((r) => [r.version, r.accepted])).toEqual([
      ["TLSv1", false],
      ["TLSv1.1", false],
      ["TLSv1.2", true],
      ["TLSv1.3", false],
    ])
    for (const refused of report.versions!.results.filter((r) => r.accepted === false)) {
      expect(refused.detail).toMatch(/^refused: /)
    }
  })

  it("a legacy server: TLSv1 and TLSv1.1 are tried with the lowered security level", async () => {
    const server = await smtp({
      tls: "implicit",
      certificate: "server",
      minVersion: "TLSv1",
      maxVersion: "TLSv1.1",
      ciphers: "DEFAULT:@SECLEVEL=0",
    })
    const { report } = await probe(await optionsFor(server, "SSL_TLS"))

    expect(report.check.failure?.reason).toBe("TlsVersionMismatch")
    expect(report.recommendation).toMatchObject({ mode: "SSL_TLS", port: server.port })
    expect(accepted(report)).toEqual(["TLSv1", "TLSv1.1"])
  })
})

describe("probe: a chain that does not verify is never recommended as working", () => {
  it("SSL_TLS with an expired certificate: spoken there, refused, renew it", async () => {
    const server = await smtp({ tls: "implicit", certificate: "expired" })
    const { report } = await probe(await optionsFor(server, "SSL_TLS"))

    expect(report.check).toMatchObject({
      works: false,
      failure: { phase: "tls", reason: "CertificateExpired" },
    })
    expect(report.attempts[0]!.tls).toMatchObject({ verified: false })
    expect(report.recommendation).toEqual({
      mode: "SSL_TLS",
      port: server.port,
      status: "certificate-refused",
      reason:
        `the server speaks SSL_TLS on port ${server.port}, but its certificate is refused: ` +
        "the server's certificate has expired",
      change: undefined,
      caveat: "the server's certificate has expired",
      fix: "the server's administrator must renew its certificate; check this machine's clock",
    })
    expect(report.recommendation?.reason).not.toMatch(/works/)
    expect(report.noRecommendation).toBeUndefined()
  })

  it("STARTTLS with an expired certificate: the same, for STARTTLS_REQUIRED kept", async () => {
    const server = await smtp({ tls: "starttls", certificate: "expired" })
    const { report } = await probe(await optionsFor(server, "STARTTLS_REQUIRED"))

    expect(report.check.failure?.reason).toBe("CertificateExpired")
    expect(report.recommendation).toMatchObject({
      mode: "STARTTLS_REQUIRED",
      port: server.port,
      status: "certificate-refused",
    })
    expect(report.recommendation?.reason).toMatch(/speaks STARTTLS .* its certificate is refused/)
  })

  it("a certificate for another host: refused, with the names it lists", async () => {
    const server = await smtp({ host: "127.0.0.2", tls: "implicit", certificate: "server" })
    const { report } = await probe(await optionsFor(server, "SSL_TLS", { host: "127.0.0.2" }))

    expect(report.check.failure?.reason).toBe("HostnameMismatch")
    expect(report.recommendation).toMatchObject({ status: "certificate-refused" })
    expect(report.recommendation?.reason).toMatch(/is issued for .*not for 127\.0\.0\.2$/)
    expect(report.recommendation?.fix).toMatch(/^set mailserver .*to a name the certificate lists/)
  })

  it("among the fallbacks, a chain that verifies wins over one that does not", async () => {
    const expired = await smtp({ tls: "implicit", certificate: "expired" })
    const starttls = await smtp({ tls: "starttls", certificate: "server" })
    const options = await optionsFor({ port: await closedPort() }, "SSL_TLS", {
      fallbackPorts: { sslTls: expired.port, startTls: starttls.port },
    })
    const { report } = await probe(options)

    expect(report.recommendation).toMatchObject({
      mode: "STARTTLS",
      port: starttls.port,
      status: "works",
    })
  })
})

describe("probe: an encrypted mode is never answered with NONE", () => {
  it.each(["STARTTLS_REQUIRED", "STARTTLS", "SSL_TLS"] as const)(
    "%s against a server with no TLS at all: no encrypted mode works, and how to get one",
    async (mode) => {
      const server = await smtp({ tls: "none" })
      const fallbackPorts = { sslTls: await closedPort(), startTls: await closedPort() }
      const { report } = await probe(await optionsFor(server, mode, { fallbackPorts }))

      // STARTTLS without credentials gets through in plain text; the others stop.
      expect(report.check.works).toBe(mode === "STARTTLS")
      expect(report.recommendation).toBeUndefined()
      expect(report.noRecommendation).toEqual({
        kind: "no-encryption",
        detail: expect.stringMatching(
          new RegExp(
            `^no encrypted mode works on 127\\.0\\.0\\.1: port ${server.port} speaks SMTP ` +
              "only in plain text: it offers no STARTTLS, and no TLS from the first byte " +
              `\\(also tried: SSL_TLS on port ${fallbackPorts.sslTls}: .*\\)$`,
          ),
        ),
        fix:
          `enable TLS on the server (STARTTLS on port ${server.port}), or use its submission ` +
          `port (${fallbackPorts.startTls}, STARTTLS) or port ${fallbackPorts.sslTls} ` +
          "(SSL_TLS); on 127.0.0.1 they do not work now, so ask the server's administrator " +
          "where TLS is offered",
      })
      // Nowhere in the report: NONE, or a mode this report showed failing.
      const json = Probe.toJson(report)
      expect(json).not.toMatch(/\bNONE\b/)
      for (const a of report.attempts) {
        expect(a.failure?.hint ?? "").not.toMatch(/use (mailSmtpEncryption=)?(SSL_TLS|STARTTLS)/)
      }
      if (mode !== "STARTTLS") {
        expect(report.check.failure?.hint).toBe(report.noRecommendation?.fix)
      }
    },
  )

  it("STARTTLS offered but refused: no NONE; the server's STARTTLS is what to fix", async () => {
    const server = await scripted({
      script: [
        Script.send(lines("220 mx.test ESMTP")),
        Script.expect(/^EHLO /i, lines("250-mx.test", "250 STARTTLS")),
        Script.expect(/^STARTTLS$/i, lines("454 4.7.0 TLS not available")),
        Script.expect(/^QUIT/i, lines("221 2.0.0 Bye")),
        Script.close(),
      ],
    })
    const { report } = await probe(await optionsFor(server, "STARTTLS_REQUIRED"))

    expect(report.check.failure).toMatchObject({ reason: "StartTlsRefused" })
    expect(report.recommendation).toBeUndefined()
    expect(report.noRecommendation?.kind).toBe("no-encryption")
    expect(report.noRecommendation?.detail).toContain(
      `port ${server.port} offers STARTTLS, but TLS does not come up: the server refused STARTTLS`,
    )
    expect(report.noRecommendation?.fix).toMatch(/^fix STARTTLS on the server's port \d+, or /)
  })

  it("credentials under STARTTLS, no TLS anywhere: TLS on the server, not SSL_TLS", async () => {
    const server = await smtp({ tls: "none", auth: { user: "svc", password } })
    const { report } = await probe(await optionsFor(server, "STARTTLS", { user }))

    expect(report.check.failure?.reason).toBe("CleartextCredentials")
    expect(report.check.failure?.hint).toMatch(/^enable TLS on the server .*clear mailuser/)
    expect(report.noRecommendation?.kind).toBe("no-encryption")
  })

  it("a plain-only port with TLS on a fallback: the hints point there", async () => {
    const server = await smtp({ tls: "none" })
    const implicit = await smtp({ tls: "implicit", certificate: "server" })
    const { report } = await probe(
      await optionsFor(server, "STARTTLS_REQUIRED", {
        fallbackPorts: { sslTls: implicit.port, startTls: await closedPort() },
      }),
    )

    expect(report.recommendation).toMatchObject({
      mode: "SSL_TLS",
      port: implicit.port,
      status: "works",
    })
    const hint =
      `port ${server.port} offers no encryption: use SSL_TLS on port ${implicit.port}, ` +
      "as recommended"
    expect(report.check.failure?.hint).toBe(hint)
    // SSL_TLS on the plain port: not "use mailSmtpEncryption=STARTTLS here".
    expect(report.attempts[1]).toMatchObject({
      mode: "SSL_TLS",
      port: server.port,
      failure: { reason: "PlaintextWhereTlsExpected", hint },
    })
    expect(report.mismatch).toBeUndefined()
  })

  it("SSL_TLS on a plain-only port: the mismatch does not call it a STARTTLS port", async () => {
    const server = await smtp({ tls: "none" })
    const { report } = await probe(await optionsFor(server, "SSL_TLS"))

    expect(report.mismatch).toMatch(/it is a plain-text port, and it offers no STARTTLS either$/)
  })

  it("STARTTLS_REQUIRED that works stays so, never loosened to STARTTLS", async () => {
    const server = await smtp({ tls: "starttls", certificate: "server" })
    const { report } = await probe(await optionsFor(server, "STARTTLS_REQUIRED"))

    expect(report.check.works).toBe(true)
    expect(report.recommendation).toMatchObject({
      mode: "STARTTLS_REQUIRED",
      port: server.port,
      status: "works",
      reason: `STARTTLS_REQUIRED works on port ${server.port}`,
    })
  })
})

/** A custom list parsed as settings resolution would. */
const suites = (text: string): CipherSuites.CipherSuiteList => {
  const parsed = CipherSuites.parse(text)
  if (!parsed.ok) throw new Error(parsed.problem)
  return parsed.value
}

const tls12Suite = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"

describe("probe: the recommendation holds against the TLS settings checked", () => {
  const tls13Only = () =>
    smtp({ tls: "implicit", certificate: "server", minVersion: "TLSv1.3", maxVersion: "TLSv1.3" })

  it("a custom TLS 1.2 list capping TLSv1.2,TLSv1.3: the list is what to change", async () => {
    const server = await tls13Only()
    const { report } = await probe(
      await optionsFor(server, "SSL_TLS", {
        tls: {
          tlsVersions: { min: "TLSv1.2", max: "TLSv1.3" },
          allowCustomCipherSuites: true,
          cipherSuites: suites(tls12Suite),
        },
      }),
    )

    expect(report.check.failure).toMatchObject({ phase: "tls", reason: "TlsVersionMismatch" })
    expect(report.check.failure?.hint).toContain(
      "customCipherSuitesForOutboundCommunication has no suite for TLSv1.3",
    )
    expect(report.tlsSettings).toEqual({
      configured: { min: "TLSv1.2", max: "TLSv1.3" },
      offered: { min: "TLSv1.2", max: "TLSv1.2" },
      customCipherSuites: true,
    })
    expect(accepted(report)).toEqual(["TLSv1.3"])
    expect(report.recommendation).toMatchObject({
      mode: "SSL_TLS",
      port: server.port,
      reason: `SSL_TLS works on port ${server.port}, but not with these TLS settings`,
      change: {
        keys: [
          "customCipherSuitesForOutboundCommunication",
          "allowCustomCipherSuitesForOutboundCommunication",
        ],
      },
    })
    expect(report.recommendation?.change?.detail).toContain(
      "the server accepts only TLSv1.3, which cryptographicProtocolsForOutboundCommunication " +
        "allows but customCipherSuitesForOutboundCommunication has no suite for",
    )
    expect(report.recommendation?.change?.detail).toContain("TLS_AES_256_GCM_SHA384")
  })

  it("versions that exclude the server's: the version setting is what to change", async () => {
    const server = await tls13Only()
    const { report } = await probe(
      await optionsFor(server, "SSL_TLS", {
        tls: {
          tlsVersions: { min: "TLSv1.2", max: "TLSv1.2" },
          allowCustomCipherSuites: false,
          cipherSuites: { suites: [] },
        },
      }),
    )

    expect(report.check.failure?.reason).toBe("TlsVersionMismatch")
    expect(report.check.failure?.hint).toContain(
      "set cryptographicProtocolsForOutboundCommunication to versions the server supports",
    )
    expect(report.recommendation?.change).toEqual({
      keys: ["cryptographicProtocolsForOutboundCommunication"],
      detail:
        "the server accepts only TLSv1.3, which cryptographicProtocolsForOutboundCommunication " +
        "(TLSv1.2) excludes: set it to >=TLSv1.2",
    })
  })

  it("versions and a custom list that both exclude the server's: both are named", async () => {
    const server = await tls13Only()
    const { report } = await probe(
      await optionsFor(server, "SSL_TLS", {
        tls: {
          tlsVersions: { min: "TLSv1.2", max: "TLSv1.2" },
          allowCustomCipherSuites: true,
          cipherSuites: suites(tls12Suite),
        },
      }),
    )

    expect(report.recommendation?.change?.keys).toEqual([
      "cryptographicProtocolsForOutboundCommunication",
      "customCipherSuitesForOutboundCommunication",
      "allowCustomCipherSuitesForOutboundCommunication",
    ])
    expect(report.recommendation?.change?.detail).toContain(
      "set it to >=TLSv1.2, and add TLS 1.3 suites",
    )
  })

  it("a custom list sharing no suite with the server: the list is what to change", async () => {
    const server = await smtp({
      tls: "implicit",
      certificate: "server",
      maxVersion: "TLSv1.2",
      ciphers: "ECDHE-RSA-AES256-GCM-SHA384",
    })
    const { report } = await probe(
      await optionsFor(server, "SSL_TLS", {
        tls: {
          tlsVersions: { min: "TLSv1.2", max: "TLSv1.2" },
          allowCustomCipherSuites: true,
          cipherSuites: suites(tls12Suite),
        },
      }),
    )

    expect(report.check.failure?.reason).toBe("NoSharedCipher")
    expect(report.recommendation?.change?.keys).toEqual([
      "customCipherSuitesForOutboundCommunication",
      "allowCustomCipherSuitesForOutboundCommunication",
    ])
    expect(report.recommendation?.change?.detail).toContain(
      "it chose TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    )
  })

  it("settings that work there need no change", async () => {
    const server = await tls13Only()
    const { report } = await probe(await optionsFor(server, "SSL_TLS"))

    expect(report.check.works).toBe(true)
    expect(report.recommendation).toMatchObject({ mode: "SSL_TLS", change: undefined })
  })

  it("the version scan closes TLS-first connections without QUIT before a greeting", async () => {
    // A TLS-first server that greets late and notes what a client says before the greeting.
    const early: Array<string> = []
    let connections = 0
    const server = tls.createServer(
      { key: readFixture("pki/server.key"), cert: readFixture("pki/server.chain.crt") },
      (socket) => {
        connections += 1
        let greeted = false
        socket.on("error", () => {})
        socket.on("data", (chunk: Buffer) => {
          if (!greeted) early.push(chunk.toString("latin1"))
          else if (/^QUIT/im.test(chunk.toString("latin1"))) socket.end("221 2.0.0 Bye\r\n")
          else socket.write("250-smtp.test\r\n250 8BITMIME\r\n")
        })
        setTimeout(() => {
          greeted = true
          if (!socket.destroyed) socket.write("220 smtp.test ESMTP slow greeter\r\n")
        }, 300)
      },
    )
    server.on("tlsClientError", () => {})
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const port = (server.address() as net.AddressInfo).port

    const { report } = await probe(await optionsFor({ port }, "SSL_TLS"))

    expect(report.check.works).toBe(true)
    // The scan's handshakes were made, and none of them spoke before the greeting.
    expect(accepted(report)).toEqual(["TLSv1.2", "TLSv1.3"])
    expect(connections).toBeGreaterThanOrEqual(1)
    expect(early).toEqual([])
  })
})

describe("probe: STARTTLS not offered, and AUTH", () => {
  it("STARTTLS without credentials works in plain text, with a warning", async () => {
    const server = await smtp({ tls: "none" })
    const { report } = await probe(await optionsFor(server, "STARTTLS"))

    expect(report.check.works).toBe(true)
    expect(report.check.warnings.join(" ")).toMatch(/does not offer STARTTLS/)
  })

  it("STARTTLS with credentials configured fails: they would go in clear text", async () => {
    const server = await smtp({ tls: "none", auth: { user: "svc", password } })
    const { report } = await probe(await optionsFor(server, "STARTTLS", { user }))

    expect(report.check.failure).toMatchObject({ reason: "CleartextCredentials" })
    expect(server.authAttempts).toEqual([])
  })

  it("STARTTLS_REQUIRED fails when STARTTLS is not offered", async () => {
    const server = await smtp({ tls: "none" })
    const { report } = await probe(await optionsFor(server, "STARTTLS_REQUIRED"))

    expect(report.check.failure).toMatchObject({ phase: "starttls", reason: "StartTlsNotOffered" })
  })

  it("sends no credentials unless asked, but checks that AUTH is offered", async () => {
    const server = await smtp({
      tls: "starttls",
      authMethods: ["CRAM-MD5"],
      auth: { user: "svc", password },
    })
    const { report } = await probe(await optionsFor(server, "STARTTLS", { user }))

    expect(report.check.failure).toMatchObject({ phase: "auth", reason: "NoUsableAuthMechanism" })
    expect(server.authAttempts).toEqual([])
  })

  it("with a password: reports success, and never logs the password", async () => {
    const server = await smtp({ tls: "starttls", auth: { user: "svc", password } })
    const { report, logs } = await probe(
      await optionsFor(server, "STARTTLS", { user, password: Redacted.make(password) }),
    )

    expect(report.check.works).toBe(true)
    expect(report.attempts[0]!.auth?.tried).toMatchObject({ mechanism: "PLAIN", accepted: true })
    expect(server.authAttempts).toEqual([{ method: "PLAIN", user: "svc", accepted: true }])
    const everything = [...logs, Probe.toJson(report)].join("\n")
    expect(logs.some((l) => l.startsWith("C: AUTH PLAIN"))).toBe(true)
    for (const secret of [
      password,
      Buffer.from(password).toString("base64"),
      Buffer.from(`\0svc\0${password}`).toString("base64"),
    ]) {
      expect(everything).not.toContain(secret)
    }
  })

  it("with a password and a wrong password: an auth failure with the server's reply", async () => {
    const server = await smtp({
      tls: "starttls",
      authMethods: ["LOGIN"],
      auth: { user: "svc", password },
    })
    const { report, logs } = await probe(
      await optionsFor(server, "STARTTLS", { user, password: Redacted.make("not-it") }),
    )

    expect(report.check.failure).toMatchObject({ phase: "auth", reason: "AuthRejected" })
    expect(report.check.failure?.reply).toMatch(/^535/)
    expect(report.attempts[0]!.auth?.tried).toMatchObject({ mechanism: "LOGIN", accepted: false })
    const everything = [...logs, Probe.toJson(report)].join("\n")
    expect(everything).not.toContain("not-it")
    expect(everything).not.toContain(Buffer.from("not-it").toString("base64"))
  })
})

describe("probe: AUTH refused until encrypted", () => {
  it("a 538 under NONE says to encrypt first, not to check the password", async () => {
    const server = await scripted({
      script: [
        Script.send("220 smtp.test ESMTP\r\n"),
        Script.expect(/^EHLO /i, lines("250-smtp.test", "250-STARTTLS", "250 AUTH PLAIN LOGIN")),
        Script.expect(/^AUTH /i, "538 5.7.11 Must issue a STARTTLS command first\r\n"),
        Script.expect(/^QUIT/i, "221 2.0.0 Bye\r\n"),
        Script.close(),
      ],
    })
    const { report } = await probe(
      await optionsFor(server, "NONE", { user, password: Redacted.make(password) }),
    )

    expect(report.check.failure).toMatchObject({
      phase: "auth",
      reason: "AuthRejected",
      hint:
        "the server requires encryption before AUTH: set mailSmtpEncryption to " +
        "STARTTLS_REQUIRED (or SSL_TLS)",
    })
    expect(report.check.failure?.reply).toMatch(/^538 5\.7\.11/)
  })
})

describe("probe: the JSON report", () => {
  it("has every field, null where it does not apply", async () => {
    const { report } = await probe(await optionsFor({ port: await closedPort() }, "SSL_TLS"))
    const json = JSON.parse(Probe.toJson(report)) as Record<string, unknown>

    expect(Object.keys(json)).toEqual([
      "host",
      "port",
      "mode",
      "connectionTimeoutMs",
      "check",
      "listener",
      "mismatch",
      "tlsSettings",
      "recommendation",
      "noRecommendation",
      "versions",
      "attempts",
    ])
    expect(json["recommendation"]).toBeNull()
    expect(json["noRecommendation"]).toMatchObject({ kind: "unreachable" })
    const attempt = (json["attempts"] as Array<Record<string, unknown>>)[0]!
    expect(attempt["greeting"]).toBeNull()
    expect(attempt["tls"]).toBeNull()
    expect(attempt["failure"]).toMatchObject({ reason: "ConnectionRefused", reply: null })
  })
})
