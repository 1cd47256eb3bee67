import { tmpdir } from "node:os"
import { join } from "node:path"
import { Script, startScriptedSmtpServer } from "@spoc-mail/testkit"
import { describe, expect, it } from "vitest"
import { runCli } from "./cli.ts"
import { password, secretsIn, useWorkspace } from "./workspace.ts"

const { start, writeConf } = useWorkspace("probe", { mailserver: "127.0.0.1" })

describe("spoc-mail probe", () => {
  it("reports each stage of the configured mode, as text and JSON, exit 0", async () => {
    const server = await start({
      tls: "starttls",
      certificate: "server",
      auth: { user: "svc", password },
    })
    // No mailfrom: a probe does not need one.
    const conf = writeConf({
      mailSmtpPort: server.port,
      mailSmtpEncryption: "STARTTLS",
      mailuser: "svc",
      mailpass: password,
    })

    const text = await runCli(["probe", "--no-env", "--spoc-conf", conf])
    expect(text.stderr).toBe("")
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`STARTTLS on port ${server.port} (the mode checked)`)
    expect(text.stdout).toMatch(/TCP +connected in \d+ ms/)
    expect(text.stdout).toMatch(/greeting +220 smtp\.test ESMTP/)
    expect(text.stdout).toMatch(/EHLO +.*STARTTLS/)
    expect(text.stdout).toMatch(/TLS +TLSv1\.2, TLS_ECDHE_/)
    expect(text.stdout).toMatch(/chain +verified against .*root-ca\.crt and the system roots/)
    expect(text.stdout).toMatch(/#1 CN=localhost\n +issuer +CN=Spoc Mail Test Intermediate CA/)
    expect(text.stdout).toMatch(/SHA-256 +([0-9A-F]{2}:){31}[0-9A-F]{2}/)
    expect(text.stdout).toMatch(/AUTH +offers PLAIN LOGIN \(not tried; --auth/)
    expect(text.stdout).toContain("TLSv1 no, TLSv1.1 no, TLSv1.2 yes, TLSv1.3 yes")
    expect(text.stdout).toContain(
      `Recommendation: mailSmtpEncryption=STARTTLS, mailSmtpPort=${server.port} (as checked).`,
    )
    expect(server.authAttempts).toEqual([])
    expect(server.messages).toEqual([])

    const json = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--json"])
    expect(json.code).toBe(0)
    const report = JSON.parse(json.stdout)
    expect(report).toMatchObject({
      host: "127.0.0.1",
      port: server.port,
      mode: "STARTTLS",
      check: { works: true, failure: null },
      listener: { kind: "plain-greeting" },
      mismatch: null,
      recommendation: { mode: "STARTTLS", port: server.port, caveat: null },
      versions: { mode: "STARTTLS", port: server.port },
    })
    expect(report.attempts[0].tls).toMatchObject({ protocol: "TLSv1.2", verified: true })
    expect(secretsIn(text.stdout + json.stdout)).toEqual([])
  })

  it("names a mode mismatch, recommends the mode that works, exits with the TLS code", async () => {
    const server = await start({ tls: "starttls", certificate: "server" })
    const conf = writeConf({ mailSmtpPort: server.port })

    const text = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--mode", "SSL_TLS"])
    expect(text.code).toBe(6)
    expect(text.stdout).toMatch(/stopped +the server answered in plain text/)
    expect(text.stdout).toContain(
      `Mismatch: port ${server.port} greets in plain text where SSL_TLS expects TLS`,
    )
    expect(text.stdout).toContain(
      `Recommendation: mailSmtpEncryption=STARTTLS, mailSmtpPort=${server.port} ` +
        `(STARTTLS works on port ${server.port}).`,
    )

    const json = await runCli([
      "probe",
      "--no-env",
      "--spoc-conf",
      conf,
      "--mode",
      "SSL_TLS",
      "--json",
    ])
    expect(json.code).toBe(6)
    expect(JSON.parse(json.stdout)).toMatchObject({
      mode: "SSL_TLS",
      check: { works: false, failure: { phase: "tls", reason: "PlaintextWhereTlsExpected" } },
      recommendation: { mode: "STARTTLS", port: server.port },
    })
  })

  it("names the custom cipher list to change when it keeps out the server's TLS 1.3", async () => {
    const server = await start({ tls: "implicit", minVersion: "TLSv1.3", maxVersion: "TLSv1.3" })
    const conf = writeConf({
      mailSmtpPort: server.port,
      mailSmtpEncryption: "SSL_TLS",
      cryptographicProtocolsForOutboundCommunication: "TLSv1.2,TLSv1.3",
      allowCustomCipherSuitesForOutboundCommunication: "true",
      customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    })

    const text = await runCli(["probe", "--no-env", "--spoc-conf", conf])
    expect(text.code).toBe(6)
    expect(text.stdout).toContain(
      "customCipherSuitesForOutboundCommunication has no suite for TLSv1.3",
    )
    expect(text.stdout).toContain("TLSv1 no, TLSv1.1 no, TLSv1.2 no, TLSv1.3 yes")
    expect(text.stdout).toContain(
      "  a send with these settings offers TLSv1.2 " +
        "(cryptographicProtocolsForOutboundCommunication " +
        "says TLSv1.2,TLSv1.3; the custom cipher list keeps TLSv1.3 out)",
    )
    expect(text.stdout).toContain(
      `Recommendation: mailSmtpEncryption=SSL_TLS, mailSmtpPort=${server.port}, and change ` +
        "customCipherSuitesForOutboundCommunication / " +
        "allowCustomCipherSuitesForOutboundCommunication " +
        `(SSL_TLS works on port ${server.port}, but not with these TLS settings).`,
    )
    expect(text.stdout).toMatch(/\n {2}Change: the server accepts only TLSv1\.3, which /)
    expect(text.stdout).not.toContain(`(SSL_TLS works on port ${server.port}).`)

    const json = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--json"])
    expect(JSON.parse(json.stdout)).toMatchObject({
      tlsSettings: {
        configured: { min: "TLSv1.2", max: "TLSv1.3" },
        offered: { min: "TLSv1.2", max: "TLSv1.2" },
        customCipherSuites: true,
      },
      recommendation: {
        mode: "SSL_TLS",
        change: {
          keys: [
            "customCipherSuitesForOutboundCommunication",
            "allowCustomCipherSuitesForOutboundCommunication",
          ],
        },
      },
    })
  })

  it("names the version setting to change when it excludes the server's TLS 1.3", async () => {
    const server = await start({ tls: "implicit", minVersion: "TLSv1.3", maxVersion: "TLSv1.3" })
    const conf = writeConf({ mailSmtpPort: server.port, mailSmtpEncryption: "SSL_TLS" })

    const text = await runCli(["probe", "--no-env", "--spoc-conf", conf])
    expect(text.code).toBe(6)
    expect(text.stdout).toContain(
      `Recommendation: mailSmtpEncryption=SSL_TLS, mailSmtpPort=${server.port}, and change ` +
        "cryptographicProtocolsForOutboundCommunication",
    )
    expect(text.stdout).toContain(
      "  Change: the server accepts only TLSv1.3, which " +
        "cryptographicProtocolsForOutboundCommunication (TLSv1.2) excludes: set it to >=TLSv1.2.",
    )
  })

  it("shows the certificate's IPv6 address as ::1", async () => {
    const server = await start({ host: "127.0.0.2", tls: "implicit", certificate: "server" })
    const conf = writeConf({ mailserver: "127.0.0.2", mailSmtpPort: server.port })

    const text = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--mode", "SSL_TLS"])
    expect(text.stdout).toContain(
      "the server's certificate is issued for localhost, smtp.test, 127.0.0.1, ::1, " +
        "not for 127.0.0.2",
    )
    expect(text.stdout).not.toContain("0:0:0:0:0:0:0:1")
  })

  it("an expired certificate: SSL_TLS spoken there but refused, not said to work", async () => {
    const server = await start({ tls: "implicit", certificate: "expired" })
    const conf = writeConf({ mailSmtpPort: server.port, mailSmtpEncryption: "SSL_TLS" })

    const text = await runCli(["probe", "--no-env", "--spoc-conf", conf])
    expect(text.code).toBe(6)
    expect(text.stdout).toContain(
      `Result: SSL_TLS does not work on 127.0.0.1:${server.port}: ` +
        "the server's certificate has expired.",
    )
    expect(text.stdout).toContain(
      `Recommendation: mailSmtpEncryption=SSL_TLS, mailSmtpPort=${server.port}, once its ` +
        `certificate is accepted (the server speaks SSL_TLS on port ${server.port}, but its ` +
        "certificate is refused: the server's certificate has expired).\n" +
        "  Fix: the server's administrator must renew its certificate; check this machine's " +
        "clock.",
    )
    expect(text.stdout).not.toMatch(/SSL_TLS works/)

    const json = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--json"])
    expect(JSON.parse(json.stdout)).toMatchObject({
      check: { works: false, failure: { reason: "CertificateExpired" } },
      recommendation: {
        mode: "SSL_TLS",
        status: "certificate-refused",
        fix: expect.stringMatching(/renew/),
      },
      noRecommendation: null,
    })
  })

  it("an encrypted mode against a server without TLS: never NONE, but how to get TLS", async () => {
    const server = await start({ tls: "none" })
    const conf = writeConf({ mailSmtpPort: server.port, mailSmtpEncryption: "STARTTLS_REQUIRED" })

    const text = await runCli(["probe", "--no-env", "--spoc-conf", conf])
    expect(text.code).toBe(6)
    expect(text.stdout).not.toMatch(/\bNONE\b/)
    expect(text.stdout).not.toMatch(/use (mailSmtpEncryption=)?(SSL_TLS|STARTTLS)/)
    expect(text.stdout).toContain(
      "Recommendation: none; no encrypted mode works on 127.0.0.1: " +
        `port ${server.port} speaks SMTP only in plain text: it offers no STARTTLS`,
    )
    expect(text.stdout).toContain(
      `  Fix: enable TLS on the server (STARTTLS on port ${server.port}), or use its ` +
        "submission port (587, STARTTLS) or port 465 (SSL_TLS)",
    )

    const json = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--json"])
    expect(JSON.parse(json.stdout)).toMatchObject({
      recommendation: null,
      noRecommendation: { kind: "no-encryption" },
    })

    // NONE checked: NONE may be recommended, and only with the clear-text warning.
    const none = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--mode", "NONE"])
    expect(none.code).toBe(0)
    expect(none.stdout).toContain(
      `Recommendation: mailSmtpEncryption=NONE, mailSmtpPort=${server.port} (port ` +
        `${server.port} accepts plain SMTP, and no TLS mode was found).\n` +
        "  Warning: the server offers no encryption on this port: mail, and any password, " +
        "would cross the network in clear text.",
    )
  })

  it("a silent port: nothing answered in either mode; no failed mode suggested", async () => {
    const server = await startScriptedSmtpServer({ script: [Script.silent()] })
    try {
      const conf = writeConf({
        mailSmtpPort: server.port,
        mailSmtpEncryption: "STARTTLS",
        mailSmtpConnectionTimeout: 1000,
      })

      const text = await runCli(["probe", "--no-env", "--spoc-conf", conf])
      expect(text.code).toBe(5)
      expect(text.stdout).not.toMatch(/use (mailSmtpEncryption=)?(SSL_TLS|STARTTLS)/)
      expect(text.stdout).toMatch(
        new RegExp(
          `how to fix: nothing answered on port ${server.port} in either mode: check ` +
            "mailserver and mailSmtpPort",
        ),
      )
      expect(text.stdout).toContain(
        `Recommendation: none; nothing answered on port ${server.port} in either mode: it ` +
          "accepts TCP but neither greets nor completes a TLS handshake",
      )
      expect(text.stdout).toContain("  Fix: check mailserver and mailSmtpPort")
    } finally {
      await server.close()
    }
  })

  it("--auth logs in and reports a rejection with the auth code, never the password", async () => {
    const server = await start({
      tls: "starttls",
      certificate: "server",
      auth: { user: "svc", password: "the-real-one" },
    })
    const conf = writeConf({
      mailfrom: "print@example.com",
      mailSmtpPort: server.port,
      mailSmtpEncryption: "STARTTLS_REQUIRED",
      mailuser: "svc",
      mailpass: password,
    })

    const result = await runCli(["probe", "--no-env", "--spoc-conf", conf, "--auth"])
    expect(result.code).toBe(7)
    expect(result.stdout).toMatch(/AUTH +offers PLAIN LOGIN; PLAIN REJECTED: 535/)
    expect(server.authAttempts).toEqual([{ method: "PLAIN", user: "svc", accepted: false }])
    expect(secretsIn(result.stdout + result.stderr)).toEqual([])
  })

  it("with --json, prints a JSON error document when the settings cannot be read", async () => {
    const missing = join(tmpdir(), "spoc-probe-missing", "spoc.conf")
    const run = await runCli(["probe", "--no-env", "--spoc-conf", missing, "--json"])
    expect(run.code).toBe(3)
    const document = JSON.parse(run.stdout) as { error: { kind: string; exitCode: number } }
    expect(document.error).toMatchObject({ kind: "ConfigSourceError", exitCode: 3 })
  })
})
