import { X509Certificate } from "node:crypto"
import * as tls from "node:tls"
import { afterEach, describe, expect, it } from "vitest"
import * as CipherSuites from "../src/CipherSuites.ts"
import * as TlsPolicy from "../src/TlsPolicy.ts"
import * as TlsVersions from "../src/TlsVersions.ts"
import { classifyTls, versionMismatch } from "../src/TransportFailures.ts"
import * as TrustStore from "../src/TrustStore.ts"
import { makeWeakPki, pki, pkiText } from "./support/pki.ts"
import {
  closeAll,
  connectWith,
  startPlainSmtpServer,
  startTlsServer,
} from "./support/tlsServers.ts"

afterEach(closeAll)

const trusting = (...pems: ReadonlyArray<string>): TrustStore.TrustStoreShape =>
  TrustStore.fromCertificates(
    "test",
    pems.map((pem, i) => TrustStore.describe(`ca-${i}`, pem)),
  )

const privateRoot = trusting(pkiText("root-ca.crt"))

const policy = (
  versions = "TLSv1.2",
  trust: TrustStore.TrustStoreShape = privateRoot,
  ciphers?: string,
): TlsPolicy.TlsPolicyShape => {
  const range = TlsVersions.parse(versions)
  if (!range.ok) throw new Error(range.problem)
  const list = CipherSuites.parse(ciphers ?? "TLS_AES_256_GCM_SHA384")
  if (!list.ok) throw new Error(list.problem)
  return TlsPolicy.make(
    {
      tlsVersions: range.value,
      allowCustomCipherSuites: ciphers !== undefined,
      cipherSuites: list.value,
    },
    trust,
  )
}

const serverIdentity = { key: pki("server.key"), cert: pki("server.chain.crt") }

/** OpenSSL 3 speaks TLS 1.0 and 1.1 only at security level 0, on the server side too. */
const legacyServer = (version: "TLSv1" | "TLSv1.1") =>
  startTlsServer({
    ...serverIdentity,
    minVersion: version,
    maxVersion: version,
    ciphers: "DEFAULT:@SECLEVEL=0",
  })

const failureOf = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => {
      throw new Error("the connection was expected to fail")
    },
    (e: unknown) => e,
  )
  return classifyTls(error, "SSL_TLS")
}

describe("TLS versions on the wire", () => {
  it("reaches a TLS 1.0-only server with TLSv1", async () => {
    const server = await legacyServer("TLSv1")
    const connected = await connectWith(policy("TLSv1").optionsFor("localhost"), server.port)
    expect(connected.protocol).toBe("TLSv1")
  })

  it("reaches a TLS 1.0-only server with >=TLSv1", async () => {
    const server = await legacyServer("TLSv1")
    const connected = await connectWith(policy(">=TLSv1").optionsFor("localhost"), server.port)
    expect(connected.protocol).toBe("TLSv1")
  })

  it("reaches a TLS 1.1-only server with TLSv1.1", async () => {
    const server = await legacyServer("TLSv1.1")
    const connected = await connectWith(policy("TLSv1.1").optionsFor("localhost"), server.port)
    expect(connected.protocol).toBe("TLSv1.1")
  })

  it("refuses a TLS 1.0-only server with the default versions", async () => {
    const server = await legacyServer("TLSv1")
    const failure = await failureOf(connectWith(policy().optionsFor("localhost"), server.port))
    expect(failure.reason).toBe("TlsVersionMismatch")
    expect(failure.hint).toContain("cryptographicProtocolsForOutboundCommunication")
  })

  it("still negotiates TLS 1.3 with a modern server when >=TLSv1 is allowed", async () => {
    const server = await startTlsServer({ ...serverIdentity, minVersion: "TLSv1.3" })
    const connected = await connectWith(policy(">=TLSv1").optionsFor("localhost"), server.port)
    expect(connected.protocol).toBe("TLSv1.3")
  })

  it("lowers the security level only for ranges with TLSv1 or TLSv1.1", () => {
    expect(policy(">=TLSv1").optionsFor("localhost").ciphers).toMatch(/:@SECLEVEL=0$/)
    expect(policy(">=TLSv1").legacy).toBe(true)
    expect(policy(">=TLSv1.2").optionsFor("localhost").ciphers).toBeUndefined()
    expect(policy(">=TLSv1.2").legacy).toBe(false)
  })

  it("refuses a TLS 1.3-only server with TLSv1.2", async () => {
    const server = await startTlsServer({ ...serverIdentity, minVersion: "TLSv1.3" })
    const failure = await failureOf(
      connectWith(policy("TLSv1.2").optionsFor("localhost"), server.port),
    )
    expect(failure.reason).toBe("TlsVersionMismatch")
  })
})

describe("custom cipher suites on the wire (C09)", () => {
  const tls12Server = (ciphers: string) =>
    startTlsServer({ ...serverIdentity, maxVersion: "TLSv1.2", ciphers })

  it("delivers with the one suite the server allows, named in IANA words", async () => {
    const server = await tls12Server("ECDHE-RSA-AES256-GCM-SHA384")
    const options = policy(">=TLSv1.2", privateRoot, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    const connected = await connectWith(options.optionsFor("localhost"), server.port)
    expect(connected.cipher.standardName).toBe("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
  })

  it("reports no shared cipher when the server allows another suite", async () => {
    const server = await tls12Server("ECDHE-RSA-AES128-GCM-SHA256")
    const options = policy(">=TLSv1.2", privateRoot, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    const failure = await failureOf(connectWith(options.optionsFor("localhost"), server.port))
    expect(failure.reason).toBe("NoSharedCipher")
  })

  it("keeps a TLS 1.2 list on TLS 1.2 even when the server speaks TLS 1.3", async () => {
    const server = await startTlsServer(serverIdentity)
    const options = policy(">=TLSv1.2", privateRoot, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    const connected = await connectWith(options.optionsFor("localhost"), server.port)
    expect(connected.protocol).toBe("TLSv1.2")
    expect(connected.cipher.standardName).toBe("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
  })

  it("says which allowed versions a custom list removes, and blames the list", async () => {
    const tls12List = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    const capped = policy("TLSv1.2,TLSv1.3", privateRoot, tls12List)
    expect(capped.configuredVersions).toEqual({ min: "TLSv1.2", max: "TLSv1.3" })
    expect(capped.versions).toEqual({ min: "TLSv1.2", max: "TLSv1.2" })
    expect(capped.removedByCipherList).toEqual(["TLSv1.3"])
    expect(policy("TLSv1.2,TLSv1.3").removedByCipherList).toEqual([])
    expect(policy("TLSv1.2", privateRoot, tls12List).removedByCipherList).toEqual([])

    const server = await startTlsServer({ ...serverIdentity, minVersion: "TLSv1.3" })
    const error = await connectWith(capped.optionsFor("localhost"), server.port).then(
      () => undefined,
      (e: unknown) => e,
    )
    const explained = versionMismatch(capped.removedByCipherList)
    expect(classifyTls(error, "SSL_TLS").reason).toBe(explained.reason)
    expect(explained.detail).toContain("the custom cipher list is what keeps TLSv1.3 out")
    expect(explained.hint).toContain(
      "customCipherSuitesForOutboundCommunication has no suite for TLSv1.3",
    )
    expect(explained.hint).toContain("TLS_AES_256_GCM_SHA384")
    expect(explained.hint).toContain("allowCustomCipherSuitesForOutboundCommunication to false")
  })

  it("uses the TLS 1.3 suites it is given", async () => {
    const server = await startTlsServer(serverIdentity)
    const options = policy(">=TLSv1.2", privateRoot, "TLS_CHACHA20_POLY1305_SHA256")
    const connected = await connectWith(options.optionsFor("localhost"), server.port)
    expect(connected.protocol).toBe("TLSv1.3")
    expect(connected.cipher.standardName).toBe("TLS_CHACHA20_POLY1305_SHA256")
  })

  it("uses ECDSA suites against an ECDSA server", async () => {
    const server = await startTlsServer({
      key: pki("server-ecdsa.key"),
      cert: pki("server-ecdsa.chain.crt"),
      maxVersion: "TLSv1.2",
    })
    const options = policy("TLSv1.2", privateRoot, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    const connected = await connectWith(options.optionsFor("127.0.0.1"), server.port)
    expect(connected.cipher.standardName).toBe("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
  })
})

describe("verification (C10, C11)", () => {
  it("verifies a private CA's chain when its root is in the store", async () => {
    const server = await startTlsServer(serverIdentity)
    const connected = await connectWith(policy().optionsFor("localhost"), server.port)
    expect(connected.socket.authorized).toBe(true)
    expect(server.serverNames).toEqual(["localhost"])
  })

  it("refuses the same server when only the system roots are trusted", async () => {
    const server = await startTlsServer(serverIdentity)
    const options = policy("TLSv1.2", TrustStore.fromCertificates(undefined, []))
    const failure = await failureOf(connectWith(options.optionsFor("localhost"), server.port))
    expect(failure.reason).toBe("CertificateUntrusted")
    expect(failure.hint).toContain("spoc-mail trust")
  })

  it("refuses the server when only an unrelated CA is trusted", async () => {
    const server = await startTlsServer(serverIdentity)
    const options = policy("TLSv1.2", trusting(pkiText("unrelated-ca.crt")))
    const failure = await failureOf(connectWith(options.optionsFor("localhost"), server.port))
    expect(failure.reason).toBe("CertificateUntrusted")
  })

  it("keeps the system roots when a private root is added", () => {
    const ca = policy().optionsFor("localhost").ca as ReadonlyArray<string>
    for (const root of tls.rootCertificates) expect(ca).toContain(root)
    expect(ca).toContain(new X509Certificate(pki("root-ca.crt")).toString())
  })

  it("refuses an expired certificate", async () => {
    const server = await startTlsServer({ key: pki("expired.key"), cert: pki("expired.chain.crt") })
    const failure = await failureOf(connectWith(policy().optionsFor("localhost"), server.port))
    expect(failure.reason).toBe("CertificateExpired")
  })

  it("refuses a self-signed certificate that is not trusted", async () => {
    const server = await startTlsServer({ key: pki("server.key"), cert: pki("self-signed.crt") })
    const failure = await failureOf(connectWith(policy().optionsFor("localhost"), server.port))
    expect(failure.reason).toBe("CertificateUntrusted")
  })

  it("names the certificate's names when the host does not match", async () => {
    const server = await startTlsServer({
      key: pki("wrong-host.key"),
      cert: pki("wrong-host.chain.crt"),
    })
    const failure = await failureOf(connectWith(policy().optionsFor("127.0.0.1"), server.port))
    expect(failure.reason).toBe("HostnameMismatch")
    expect(failure.detail).toContain("other.test")
    expect(failure.detail).toContain("127.0.0.1")
  })

  it("names IPv6 addresses of the certificate in short form (::1)", async () => {
    const server = await startTlsServer({ ...serverIdentity, host: "127.0.0.2" })
    const failure = await failureOf(connectWith(policy().optionsFor("127.0.0.2"), server.port))
    expect(failure.reason).toBe("HostnameMismatch")
    expect(failure.detail).toBe(
      "the server's certificate is issued for localhost, smtp.test, 127.0.0.1, ::1, " +
        "not for 127.0.0.2",
    )
    const leaf = new X509Certificate(pki("server.crt"))
    expect(TlsPolicy.certificateNames({ subjectaltname: leaf.subjectAltName } as never)).toEqual([
      "localhost",
      "smtp.test",
      "127.0.0.1",
      "::1",
    ])
  })

  it("checks an IP host against IP addresses and sends no SNI for it", async () => {
    const server = await startTlsServer(serverIdentity)
    const options = policy().optionsFor("127.0.0.1")
    expect(options.servername).toBeUndefined()
    const connected = await connectWith(options, server.port)
    expect(connected.socket.authorized).toBe(true)
    expect(server.serverNames).toEqual([false])
  })

  it("checks the backup against its own name, not the primary's", async () => {
    const backupWithPrimaryCert = await startTlsServer({ ...serverIdentity, host: "127.0.0.2" })
    const failure = await failureOf(
      connectWith(policy().optionsFor("127.0.0.2"), backupWithPrimaryCert.port),
    )
    expect(failure.reason).toBe("HostnameMismatch")
    expect(failure.detail).toContain("not for 127.0.0.2")

    const backup = await startTlsServer({
      key: pki("backup.key"),
      cert: pki("backup.chain.crt"),
      host: "127.0.0.2",
    })
    const connected = await connectWith(policy().optionsFor("127.0.0.2"), backup.port)
    expect(connected.socket.authorized).toBe(true)
  })

  it("checks the endpoint's host even when a transport sends another server name", async () => {
    const server = await startTlsServer({
      key: pki("wrong-host.key"),
      cert: pki("wrong-host.chain.crt"),
    })
    const options = { ...policy().optionsFor("localhost"), servername: "other.test" }
    const failure = await failureOf(connectWith(options, server.port))
    expect(failure.reason).toBe("HostnameMismatch")
  })

  it("ignores NODE_TLS_REJECT_UNAUTHORIZED=0", async () => {
    const server = await startTlsServer(serverIdentity)
    const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED
    const savedEmit = process.emitWarning
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0"
    process.emitWarning = () => {}
    try {
      const untrusting = policy("TLSv1.2", TrustStore.fromCertificates(undefined, []))
      const failure = await failureOf(connectWith(untrusting.optionsFor("localhost"), server.port))
      expect(failure.reason).toBe("CertificateUntrusted")
      const otherHost = await startTlsServer({
        key: pki("wrong-host.key"),
        cert: pki("wrong-host.chain.crt"),
      })
      const wrongHost = await failureOf(
        connectWith(policy().optionsFor("127.0.0.1"), otherHost.port),
      )
      expect(wrongHost.reason).toBe("HostnameMismatch")
    } finally {
      if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved
      process.emitWarning = savedEmit
    }
  })

  it("tells plain text apart from a TLS failure (C01)", async () => {
    const server = await startPlainSmtpServer()
    const started = Date.now()
    const failure = await failureOf(connectWith(policy().optionsFor("127.0.0.1"), server.port))
    expect(failure.reason).toBe("PlaintextWhereTlsExpected")
    expect(failure.hint).toContain("STARTTLS")
    expect(Date.now() - started).toBeLessThan(2_000)
  })
})

describe("weak server parameters", () => {
  const weak = makeWeakPki()
  const trust = trusting(weak.caPem)
  const serve = (issued: { certPem: string; keyPem: string }) =>
    startTlsServer({ key: issued.keyPem, cert: issued.certPem, ciphers: "DEFAULT:@SECLEVEL=0" })

  it("accepts a strong certificate of the throwaway CA", async () => {
    const server = await serve(weak.strong)
    const connected = await connectWith(
      policy(">=TLSv1", trust).optionsFor("127.0.0.1"),
      server.port,
    )
    expect(connected.socket.authorized).toBe(true)
  })

  for (const versions of ["TLSv1.2", ">=TLSv1"]) {
    it(`refuses a 1024-bit RSA server key with ${versions}`, async () => {
      const server = await serve(weak.smallKey)
      const failure = await failureOf(
        connectWith(policy(versions, trust).optionsFor("127.0.0.1"), server.port),
      )
      expect(failure.reason).toBe("WeakParameters")
    })

    it(`refuses a SHA-1 signed server certificate with ${versions}`, async () => {
      const server = await serve(weak.sha1Signed)
      const failure = await failureOf(
        connectWith(policy(versions, trust).optionsFor("127.0.0.1"), server.port),
      )
      expect(failure.reason).toBe("WeakParameters")
    })
  }

  it("matches an IP host against IP addresses however they are written", () => {
    const server = new X509Certificate(pki("server.crt")).toLegacyObject()
    // The fixture writes ::1 out in full: IP Address:0:0:0:0:0:0:0:1.
    expect(server.subjectaltname).toContain("0:0:0:0:0:0:0:1")
    for (const host of ["::1", "0:0:0:0:0:0:0:1", "127.0.0.1", "localhost", "smtp.test"]) {
      expect(TlsPolicy.checkServer(host, server)).toBeUndefined()
    }
    for (const host of ["::2", "127.0.0.2", "backup.test"]) {
      expect(TlsPolicy.checkServer(host, server)?.reason).toBe("HostnameMismatch")
    }
  })

  it("names the weakness in the error our own check raises", () => {
    const legacyObject = (pem: string) => new X509Certificate(pem).toLegacyObject()
    const smallKey = TlsPolicy.checkServer("127.0.0.1", legacyObject(weak.smallKey.certPem))
    expect(smallKey?.reason).toBe("WeakParameters")
    expect(smallKey?.message).toContain("1024-bit RSA key")
    const sha1 = TlsPolicy.checkServer("127.0.0.1", legacyObject(weak.sha1Signed.certPem))
    expect(sha1?.message).toContain("signed with SHA-1 with RSA")
    expect(TlsPolicy.checkServer("127.0.0.1", legacyObject(weak.strong.certPem))).toBeUndefined()
    expect(classifyTls(sha1, "STARTTLS").reason).toBe("WeakParameters")
  })
})
