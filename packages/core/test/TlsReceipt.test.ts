import { X509Certificate } from "node:crypto"
import { afterEach, describe, expect, it } from "vitest"
import * as TlsPolicy from "../src/TlsPolicy.ts"
import { describeTlsSocket } from "../src/Transport.ts"
import * as TrustStore from "../src/TrustStore.ts"
import { pki, pkiText } from "./support/pki.ts"
import { closeAll, connectWith, startTlsServer } from "./support/tlsServers.ts"

afterEach(closeAll)

describe("the TLS part of a receipt", () => {
  it("reports protocol, cipher and the peer certificate", async () => {
    const server = await startTlsServer({ key: pki("server.key"), cert: pki("server.chain.crt") })
    const trust = TrustStore.fromCertificates("t", [
      TrustStore.describe("root", pkiText("root-ca.crt")),
    ])
    const policy = TlsPolicy.make(
      {
        tlsVersions: { min: "TLSv1.2", max: "TLSv1.3" },
        allowCustomCipherSuites: false,
        cipherSuites: { suites: [] },
      },
      trust,
    )
    const { socket } = await connectWith(policy.optionsFor("localhost"), server.port)
    const session = describeTlsSocket(socket, "SSL_TLS")
    const leaf = new X509Certificate(pki("server.crt"))
    expect(session.protocol).toBe("TLSv1.3")
    expect(session.cipher).toMatch(/^TLS_AES_|^TLS_CHACHA20/)
    expect(session.via).toBe("SSL_TLS")
    expect(session.peer?.fingerprint256).toBe(leaf.fingerprint256)
    expect(session.peer?.subject).toBe(leaf.subject.split("\n").join(", "))
    expect(session.peer?.issuer).toBe(leaf.issuer.split("\n").join(", "))
    expect(session.peer?.validFrom).toBe(new Date(leaf.validFrom).toISOString())
    expect(session.peer?.validTo).toBe(new Date(leaf.validTo).toISOString())
    expect(session.peer?.subjectAltNames).toContain("DNS:smtp.test")
  })
})
