import { TrustStore } from "@spoc-mail/core"
import { startSmtpServer, type SmtpTestServer } from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { delivered, failed, policyFor, send, trustFrom } from "./support/Harness.ts"

const servers: Array<SmtpTestServer> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

const implicitTls = async (options: Parameters<typeof startSmtpServer>[0] = {}) => {
  const server = await startSmtpServer({ tls: "implicit", ...options })
  servers.push(server)
  return server
}

const sslTls = { mailSmtpEncryption: "SSL_TLS" }

describe("host names (C10)", () => {
  it("refuses a certificate for another host, naming the certificate's names", async () => {
    const server = await implicitTls({ certificate: "wrong-host" })

    const error = failed(await send(await policyFor(server, sslTls)))

    expect(error.reason).toBe("HostnameMismatch")
    expect(error.phase).toBe("tls")
    expect(error.message).toContain("other.test")
    expect(server.messages).toHaveLength(0)
  })

  it("delivers to an IP host its certificate names, without SNI or a warning", async () => {
    const server = await implicitTls({ certificate: "server" })
    const warnings: Array<Error> = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on("warning", onWarning)

    const receipt = await send(await policyFor(server, sslTls)).finally(() =>
      process.off("warning", onWarning),
    )

    expect(delivered(receipt).tls?.peer?.subjectAltNames).toContain("127.0.0.1")
    expect(server.messages[0]!.servername).toBeUndefined()
    expect(warnings).toEqual([])
  })

  it("checks the backup against its own name", async () => {
    // The primary's certificate served on the backup's address (127.0.0.2).
    const server = await implicitTls({ host: "127.0.0.2", certificate: "server" })

    const error = failed(await send(await policyFor(server, sslTls, { role: "backup" })))

    expect(error.reason).toBe("HostnameMismatch")
    expect(error.endpoint.role).toBe("backup")
    expect(error.message).toContain("127.0.0.2")
  })
})

describe("trust (C11)", () => {
  it("delivers with the private root CA from a PEM file", async () => {
    const server = await implicitTls()

    delivered(await send(await policyFor(server, sslTls, { trust: await trustFrom() })))

    expect(server.messages).toHaveLength(1)
  })

  it("refuses the same server when only the system roots are trusted", async () => {
    const server = await implicitTls()
    const systemOnly = TrustStore.fromCertificates(undefined, [])

    const error = failed(await send(await policyFor(server, sslTls, { trust: systemOnly })))

    expect(error.reason).toBe("CertificateUntrusted")
    expect(error.hint).toMatch(/trust/)
  })

  it.each(["pki/root-ca.crlf-bom.crt", "pki/bundle.crt"])("delivers trusting %s", async (pem) => {
    const server = await implicitTls()

    delivered(await send(await policyFor(server, sslTls, { trust: await trustFrom(pem) })))
  })

  it("refuses the server when only an unrelated CA is trusted", async () => {
    const server = await implicitTls()
    const trust = await trustFrom("pki/unrelated-ca.crt")

    const error = failed(await send(await policyFor(server, sslTls, { trust })))

    expect(error.reason).toBe("CertificateUntrusted")
  })
})

describe("validity", () => {
  it("refuses an expired certificate under STARTTLS", async () => {
    const server = await startSmtpServer({ tls: "starttls", certificate: "expired" })
    servers.push(server)

    const error = failed(await send(await policyFor(server, { mailSmtpEncryption: "STARTTLS" })))

    expect(error.reason).toBe("CertificateExpired")
    expect(error.phase).toBe("tls")
    expect(error.command).toBe("STARTTLS")
  })

  it("keeps verification on when NODE_TLS_REJECT_UNAUTHORIZED=0", async () => {
    const server = await implicitTls({ certificate: "self-signed" })
    const previous = process.env["NODE_TLS_REJECT_UNAUTHORIZED"]
    process.env["NODE_TLS_REJECT_UNAUTHORIZED"] = "0"
    try {
      const error = failed(await send(await policyFor(server, sslTls)))
      expect(error.reason).toBe("CertificateUntrusted")
    } finally {
      if (previous === undefined) delete process.env["NODE_TLS_REJECT_UNAUTHORIZED"]
      else process.env["NODE_TLS_REJECT_UNAUTHORIZED"] = previous
    }
  })
})

describe("versions and ciphers (C09)", () => {
  it("names the negotiated cipher when a Java-style suite name matches the server", async () => {
    const server = await implicitTls({
      maxVersion: "TLSv1.2",
      ciphers: "ECDHE-RSA-AES256-GCM-SHA384",
    })
    const policy = await policyFor(server, {
      ...sslTls,
      allowCustomCipherSuitesForOutboundCommunication: "true",
      customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    })

    const receipt = delivered(await send(policy))

    expect(receipt.tls?.cipher).toBe("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
  })

  it("reports no shared cipher when the server allows none of the list", async () => {
    const server = await implicitTls({
      maxVersion: "TLSv1.2",
      ciphers: "ECDHE-RSA-AES128-GCM-SHA256",
    })
    const policy = await policyFor(server, {
      ...sslTls,
      allowCustomCipherSuitesForOutboundCommunication: "true",
      customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    })

    const error = failed(await send(policy))

    expect(error.reason).toBe("NoSharedCipher")
  })

  it("reports a version mismatch against a TLS 1.3-only server", async () => {
    const server = await implicitTls({ minVersion: "TLSv1.3" })

    const error = failed(
      await send(
        await policyFor(server, {
          ...sslTls,
          cryptographicProtocolsForOutboundCommunication: "TLSv1.2",
        }),
      ),
    )

    expect(error.reason).toBe("TlsVersionMismatch")
  })
})
