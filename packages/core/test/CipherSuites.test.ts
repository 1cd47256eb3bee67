import * as tls from "node:tls"
import { describe, expect, it } from "vitest"
import * as CipherSuites from "../src/CipherSuites.ts"
import { cipherTable } from "../src/internal/cipherTable.ts"
import { resolve } from "../src/SettingsResolution.ts"
import * as ConfigSource from "../src/ConfigSource.ts"
import * as Origin from "../src/Origin.ts"
import * as TlsVersions from "../src/TlsVersions.ts"

const list = (text: string) => {
  const parsed = CipherSuites.parse(text)
  if (!parsed.ok) throw new Error(`${text}: ${parsed.problem}`)
  return parsed.value
}

const problem = (text: string) => {
  const parsed = CipherSuites.parse(text)
  if (parsed.ok) throw new Error(`${text} was accepted`)
  return `${parsed.problem} / ${parsed.fix}`
}

const versions = (text: string) =>
  (TlsVersions.parse(text) as { value: TlsVersions.TlsVersionRange }).value

describe("the generated cipher table", () => {
  it("covers every suite this Node's OpenSSL offers", () => {
    const opensslNames = new Set(Object.values(cipherTable).map((e) => e.openssl.toLowerCase()))
    const missing = tls.getCiphers().filter((name) => !opensslNames.has(name))
    expect(missing, "regenerate with scripts/generate-cipher-table.mjs").toEqual([])
    expect(Object.keys(cipherTable).length).toBeGreaterThanOrEqual(tls.getCiphers().length)
  })

  it("maps names the way OpenSSL's own -stdname listing does", () => {
    expect(cipherTable.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384?.openssl).toBe(
      "ECDHE-RSA-AES256-GCM-SHA384",
    )
    expect(cipherTable.TLS_RSA_WITH_AES_128_CBC_SHA?.openssl).toBe("AES128-SHA")
    expect(cipherTable.TLS_RSA_WITH_AES_128_CBC_SHA?.minVersion).toBe("TLSv1")
    expect(cipherTable.TLS_AES_128_CCM_8_SHA256?.minVersion).toBe("TLSv1.3")
  })

  it("holds only names Node accepts in a secure context", () => {
    for (const [name, entry] of Object.entries(cipherTable)) {
      const ciphers =
        entry.minVersion === "TLSv1.3" ? entry.openssl : `${entry.openssl}:@SECLEVEL=0`
      expect(() => tls.createSecureContext({ ciphers }), name).not.toThrow()
    }
  })
})

describe("cipher suite lists", () => {
  it("maps IANA names to OpenSSL names and passes TLS 1.3 names through", () => {
    const suites = list("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_256_GCM_SHA384")
    expect(CipherSuites.toNodeCiphers(suites)).toBe(
      "ECDHE-RSA-AES256-GCM-SHA384:TLS_AES_256_GCM_SHA384",
    )
  })

  it("reads Java SSL_ aliases, OpenSSL names and any case", () => {
    expect(list("SSL_RSA_WITH_AES_128_CBC_SHA").suites[0]!.name).toBe(
      "TLS_RSA_WITH_AES_128_CBC_SHA",
    )
    expect(list("ECDHE-ECDSA-AES128-GCM-SHA256").suites[0]!.name).toBe(
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    )
    expect(list("tls_ecdhe_rsa_with_aes_128_gcm_sha256").suites[0]!.openssl).toBe(
      "ECDHE-RSA-AES128-GCM-SHA256",
    )
  })

  it("skips the signalling values Java lists beside real suites", () => {
    const suites = list("TLS_EMPTY_RENEGOTIATION_INFO_SCSV TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    expect(suites.suites.map((s) => s.name)).toEqual(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
  })

  it("names an unknown token and suggests the closest suite (C09)", () => {
    const text = problem("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA385")
    expect(text).toContain('"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA385"')
    expect(text).toContain("did you mean TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384?")
  })

  it("reports every bad token at once", () => {
    const text = problem("TLS_FOO, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_RSA_WITH_RC4_128_SHA")
    expect(text).toContain('"TLS_FOO"')
    expect(text).toContain('"TLS_RSA_WITH_RC4_128_SHA" is an obsolete suite')
  })

  it("refuses suites that do not authenticate the server or do not encrypt", () => {
    expect(problem("TLS_DH_anon_WITH_AES_128_GCM_SHA256")).toContain("anonymous")
    expect(problem("TLS_RSA_WITH_NULL_SHA256")).toContain("does not encrypt")
    expect(problem("TLS_PSK_WITH_AES_128_GCM_SHA256")).toContain("pre-shared key")
  })

  it("refuses a list of only TLS 1.3 suites with TLSv1.2", () => {
    const suites = list("TLS_AES_256_GCM_SHA384 TLS_AES_128_GCM_SHA256")
    const checked = CipherSuites.checkUsable(suites, versions("TLSv1.2"))
    expect(checked.ok).toBe(false)
    expect(checked.ok ? "" : checked.problem).toContain("TLS 1.3 suites")
    expect(CipherSuites.checkUsable(suites, versions(">=TLSv1.2")).ok).toBe(true)
  })

  it("refuses TLS 1.2 AEAD suites with TLSv1 alone", () => {
    const suites = list("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    expect(CipherSuites.checkUsable(suites, versions("TLSv1")).ok).toBe(false)
    expect(CipherSuites.checkUsable(suites, versions(">=TLSv1")).ok).toBe(true)
  })

  it("narrows the range to the versions the list can negotiate", () => {
    const tls12 = list("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    expect(CipherSuites.narrowRange(tls12, versions(">=TLSv1"))).toEqual({
      min: "TLSv1.2",
      max: "TLSv1.2",
    })
    const mixed = list("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA TLS_AES_128_GCM_SHA256")
    expect(CipherSuites.narrowRange(mixed, versions(">=TLSv1"))).toEqual({
      min: "TLSv1",
      max: "TLSv1.3",
    })
  })
})

describe("cipher suites in settings resolution (C09)", () => {
  const resolveWith = (values: Record<string, string>) =>
    resolve([
      {
        layer: "spoc.conf",
        entries: Object.entries({
          mailserver: "smtp.example.com",
          mailfrom: "print@example.com",
          allowCustomCipherSuitesForOutboundCommunication: "true",
          ...values,
        }).map(([key, raw], i) => ConfigSource.entry(key, raw, Origin.file("spoc.conf", i + 1))),
        warnings: [],
      },
    ])

  it("fails at load naming the mistyped token", () => {
    const resolution = resolveWith({
      customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA385",
    })
    expect(resolution.settings).toBeUndefined()
    expect(resolution.problems).toHaveLength(1)
    expect(resolution.problems[0]!.key).toBe("customCipherSuitesForOutboundCommunication")
    expect(resolution.problems[0]!.message).toContain("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA385")
    expect(resolution.problems[0]!.fix).toContain("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
  })

  it("fails at load when only TLS 1.3 suites meet TLSv1.2", () => {
    const resolution = resolveWith({
      cryptographicProtocolsForOutboundCommunication: "TLSv1.2",
      customCipherSuitesForOutboundCommunication: "TLS_AES_256_GCM_SHA384",
    })
    expect(resolution.settings).toBeUndefined()
    expect(resolution.problems[0]!.message).toContain("TLS_AES_256_GCM_SHA384")
  })

  it("ignores a faulty list, with a warning, when custom suites are not allowed", () => {
    const resolution = resolveWith({
      allowCustomCipherSuitesForOutboundCommunication: "false",
      customCipherSuitesForOutboundCommunication: "TLS_NOT_A_SUITE",
    })
    expect(resolution.problems).toEqual([])
    expect(
      resolution.warnings.some((w) => w.key === "customCipherSuitesForOutboundCommunication"),
    ).toBe(true)
  })
})
