import { describe, expect, it } from "vitest"
import { ServerCertificateRefused } from "../src/TlsPolicy.ts"
import { TransportError } from "../src/TransportError.ts"
import {
  authRefusal,
  classifyTls,
  explainVersionMismatch,
  versionMismatch,
} from "../src/TransportFailures.ts"

const nodeError = (message: string, code?: string) =>
  Object.assign(new Error(message), code === undefined ? {} : { code })

/** What nodemailer does: replace the code, keep the original as originalCode. */
const wrappedByNodemailer = (error: Error & { code?: string }) =>
  Object.assign(error, { originalCode: error.code, code: "ETLS" })

describe("TLS failure classification", () => {
  it("keeps an OpenSSL message that spans lines on one line of the detail", () => {
    const error = nodeError("ssl3_read_bytes:tlsv1 alert internal error:\nSSL alert number 80\n")
    const classified = classifyTls(error, "SSL_TLS")
    expect(classified.reason).toBe("TlsHandshakeFailed")
    expect(classified.detail).toContain("internal error: SSL alert number 80")
    expect(classified.detail).not.toMatch(/[\r\n]/)
  })

  it("reads Node's verification codes", () => {
    expect(
      classifyTls(nodeError("certificate has expired", "CERT_HAS_EXPIRED"), "SSL_TLS").reason,
    ).toBe("CertificateExpired")
    expect(
      classifyTls(
        nodeError("unable to get local issuer certificate", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"),
        "SSL_TLS",
      ).reason,
    ).toBe("CertificateUntrusted")
  })

  it("looks through nodemailer's code replacement and through causes", () => {
    const expired = wrappedByNodemailer(nodeError("certificate has expired", "CERT_HAS_EXPIRED"))
    expect(classifyTls(expired, "STARTTLS").reason).toBe("CertificateExpired")
    const wrapped = new Error("Error initiating TLS", {
      cause: nodeError("self-signed certificate", "DEPTH_ZERO_SELF_SIGNED_CERT"),
    })
    expect(classifyTls(wrapped, "STARTTLS").reason).toBe("CertificateUntrusted")
  })

  it("classifies by message when only the text survived", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["Error initiating TLS - certificate has expired", "CertificateExpired"],
      [
        "Error initiating TLS - self-signed certificate in certificate chain",
        "CertificateUntrusted",
      ],
      ["Error initiating TLS - unable to verify the first certificate", "CertificateUntrusted"],
      [
        "C0:error:0A00010B:SSL routines:ssl3_get_record:wrong version number",
        "PlaintextWhereTlsExpected",
      ],
      [
        "C0:error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure",
        "NoSharedCipher",
      ],
      [
        "C0:error:0A00042E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version",
        "TlsVersionMismatch",
      ],
      ["C0:error:0A00018A:SSL routines:tls_process_ske_dhe:dh key too small", "WeakParameters"],
      ["CA signature digest algorithm too weak", "WeakParameters"],
      ["EE certificate key too weak", "WeakParameters"],
      [
        "Client network socket disconnected before secure TLS connection was established",
        "TlsHandshakeFailed",
      ],
    ]
    for (const [message, reason] of cases) {
      expect(classifyTls(wrappedByNodemailer(nodeError(message)), "SSL_TLS").reason, message).toBe(
        reason,
      )
    }
  })

  it("says STARTTLS is the mode when an SSL_TLS connection meets plain text", () => {
    const plain = nodeError("wrong version number", "ERR_SSL_WRONG_VERSION_NUMBER")
    expect(classifyTls(plain, "SSL_TLS").hint).toContain("STARTTLS")
    expect(classifyTls(plain, "STARTTLS").hint).not.toContain("use mailSmtpEncryption=STARTTLS")
  })

  it("names the certificate's names on a host mismatch", () => {
    const refused = new ServerCertificateRefused({
      reason: "HostnameMismatch",
      host: "127.0.0.2",
      certificateNames: ["localhost", "smtp.test", "127.0.0.1"],
      message:
        "the server's certificate is issued for localhost, smtp.test, 127.0.0.1, not for 127.0.0.2",
    })
    const classified = classifyTls(wrappedByNodemailer(refused), "SSL_TLS")
    expect(classified.reason).toBe("HostnameMismatch")
    expect(classified.detail).toBe(
      "the server's certificate is issued for localhost, smtp.test, 127.0.0.1, not for 127.0.0.2",
    )
    expect(classified.hint).toContain("mailserver")
  })

  it("reads the names from Node's own host-name error", () => {
    const error = Object.assign(nodeError("Hostname/IP does not match certificate's altnames"), {
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
      host: "127.0.0.1",
      cert: { subjectaltname: "DNS:other.test" },
    })
    expect(classifyTls(error, "SSL_TLS").detail).toContain(
      "issued for other.test, not for 127.0.0.1",
    )
  })

  it("shortens IPv6 addresses from Node's host-name error", () => {
    const error = Object.assign(nodeError("Hostname/IP does not match certificate's altnames"), {
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
      host: "127.0.0.2",
      cert: { subjectaltname: "DNS:localhost, IP Address:0:0:0:0:0:0:0:1" },
    })
    expect(classifyTls(error, "SSL_TLS").detail).toBe(
      "the server's certificate is issued for localhost, ::1, not for 127.0.0.2",
    )
  })

  it("gives every TLS failure a hint", () => {
    for (const message of ["wrong version number", "handshake failure", "something else"]) {
      expect(classifyTls(nodeError(message), "SSL_TLS").hint).toBeTruthy()
    }
  })
})

describe("refused TLS versions", () => {
  it("points at the version setting when no cipher list removed a version", () => {
    const plain = classifyTls(
      nodeError("unsupported protocol", "ERR_SSL_UNSUPPORTED_PROTOCOL"),
      "SSL_TLS",
    )
    expect(plain).toEqual(versionMismatch())
    expect(plain.hint).toContain("cryptographicProtocolsForOutboundCommunication")
    expect(plain.hint).not.toContain("customCipherSuitesForOutboundCommunication")
  })

  it("points at the cipher list when it removed the versions the server wants", () => {
    const legacy = versionMismatch(["TLSv1", "TLSv1.1"])
    expect(legacy.reason).toBe("TlsVersionMismatch")
    expect(legacy.hint).toContain(
      "has no suite for TLSv1 and TLSv1.1, so spoc-mail does not offer them",
    )
  })

  it("rewords a transport's error with the policy's knowledge, keeping everything else", () => {
    const endpoint = { host: "mx.test", port: 465, role: "primary" as const }
    const error = new TransportError({
      reason: "TlsVersionMismatch",
      phase: "tls",
      endpoint,
      detail: "the server does not accept the TLS versions spoc-mail allows",
      hint: "set cryptographicProtocolsForOutboundCommunication",
    })
    const explained = explainVersionMismatch(error, ["TLSv1.3"])
    expect(explained).toBeInstanceOf(TransportError)
    expect({
      reason: explained.reason,
      phase: explained.phase,
      endpoint: explained.endpoint,
    }).toEqual({ reason: "TlsVersionMismatch", phase: "tls", endpoint })
    expect(explained.hint).toContain("has no suite for TLSv1.3")
    expect(explainVersionMismatch(error, [])).toBe(error)
    const other = new TransportError({
      reason: "NoSharedCipher",
      phase: "tls",
      endpoint,
      detail: "x",
    })
    expect(explainVersionMismatch(other, ["TLSv1.3"])).toBe(other)
  })
})

describe("refused AUTH", () => {
  const encryptionHint =
    "the server requires encryption before AUTH: set mailSmtpEncryption to STARTTLS_REQUIRED " +
    "(or SSL_TLS)"

  it("says encryption is required for 538 and 5.7.11", () => {
    const refusal = authRefusal(
      { code: 538, enhancedCode: "5.7.11", text: "Must issue a STARTTLS command first" },
      "AUTH PLAIN",
    )
    expect(refusal).toEqual({
      reason: "AuthRejected",
      detail: "the server refused AUTH PLAIN on a connection that is not encrypted",
      hint: encryptionHint,
    })
    expect(authRefusal({ code: 554, enhancedCode: "5.7.11", text: "x" }, "AUTH LOGIN").hint).toBe(
      encryptionHint,
    )
  })

  it("says encryption is required for 530 about STARTTLS, not for other 530s", () => {
    const starttls = {
      code: 530,
      enhancedCode: "5.7.0",
      text: "Must issue a STARTTLS command first",
    }
    expect(authRefusal(starttls, "AUTH PLAIN").hint).toBe(encryptionHint)
    const other = authRefusal({ code: 530, text: "Access denied" }, "AUTH PLAIN")
    expect(other.reason).toBe("AuthRejected")
    expect(other.hint).toContain("check mailuser and mailpass")
  })

  it("blames the credentials for 535 and never a credential for anything else", () => {
    const wrong = authRefusal({ code: 535, enhancedCode: "5.7.8", text: "bad" }, "AUTH PLAIN")
    expect(wrong.detail).toBe("the server rejected the user name or password")
    expect(wrong.hint).toContain("check mailuser and mailpass")
    expect(authRefusal({ code: 454, text: "try later" }, "AUTH PLAIN").hint).toContain(
      "try again later",
    )
    expect(authRefusal({ code: 534, text: "too weak" }, "AUTH LOGIN").detail).toContain("too weak")
  })
})
