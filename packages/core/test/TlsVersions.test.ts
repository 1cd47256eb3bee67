import { describe, expect, it } from "vitest"
import * as TlsVersions from "../src/TlsVersions.ts"

const range = (text: string) => {
  const parsed = TlsVersions.parse(text)
  if (!parsed.ok) throw new Error(`${text}: ${parsed.problem}`)
  return parsed.value
}

const problem = (text: string) => {
  const parsed = TlsVersions.parse(text)
  if (parsed.ok) throw new Error(`${text} was accepted`)
  return `${parsed.problem} / ${parsed.fix}`
}

describe("TLS versions", () => {
  it("reads one name as exactly that version", () => {
    expect(range("TLSv1.2")).toEqual({ min: "TLSv1.2", max: "TLSv1.2" })
    expect(range("TLSv1")).toEqual({ min: "TLSv1", max: "TLSv1" })
  })

  it("normalises the spellings administrators use", () => {
    for (const spelling of ["TLS1.2", "Tls12", "TLSv1_2", "tlsv1.2", "1.2", "TLS 1.2", "TLSv1-2"]) {
      expect(range(spelling), spelling).toEqual({ min: "TLSv1.2", max: "TLSv1.2" })
    }
    expect(range("TLSv1.0")).toEqual({ min: "TLSv1", max: "TLSv1" })
    expect(range("tls10")).toEqual({ min: "TLSv1", max: "TLSv1" })
  })

  it("reads a contiguous list, in any order and with any separator", () => {
    expect(range("TLSv1.3,TLSv1.2")).toEqual({ min: "TLSv1.2", max: "TLSv1.3" })
    expect(range("TLSv1; TLSv1.1 TLSv1.2")).toEqual({ min: "TLSv1", max: "TLSv1.2" })
    expect(range("TLS 1.2, TLS 1.3")).toEqual({ min: "TLSv1.2", max: "TLSv1.3" })
  })

  it("refuses a list with a gap and says which versions are missing", () => {
    const text = problem("TLSv1,TLSv1.2")
    expect(text).toContain("leave out TLSv1.1")
    expect(text).toContain("contiguous")
    expect(problem("TLSv1 TLSv1.3")).toContain("TLSv1.1, TLSv1.2")
  })

  it("reads >= as that version and newer", () => {
    expect(range(">=TLSv1.2")).toEqual({ min: "TLSv1.2", max: "TLSv1.3" })
    expect(range(">= TLSv1")).toEqual({ min: "TLSv1", max: "TLSv1.3" })
    expect(range("TLSv1.1+")).toEqual({ min: "TLSv1.1", max: "TLSv1.3" })
  })

  it("names the token it cannot read", () => {
    expect(problem("TLSv1.4")).toContain('"TLSv1.4" is not a TLS version')
    expect(problem("SSLv3")).toContain("SSL 3.0 and older are insecure")
    expect(problem("SSLv2Hello,TLSv1.2")).toContain("remove SSLv2Hello")
    expect(problem(">=TLS2")).toContain('"TLS2"')
    expect(problem("  ")).toContain("no TLS version")
  })

  it("tells which ranges need OpenSSL's legacy security level", () => {
    expect(TlsVersions.includesLegacy(range(">=TLSv1"))).toBe(true)
    expect(TlsVersions.includesLegacy(range("TLSv1.1"))).toBe(true)
    expect(TlsVersions.includesLegacy(range(">=TLSv1.2"))).toBe(false)
  })

  it("formats a range back in the setting's own words", () => {
    expect(TlsVersions.format(range("TLSv1.2"))).toBe("TLSv1.2")
    expect(TlsVersions.format(range(">=TLSv1.1"))).toBe(">=TLSv1.1")
    expect(TlsVersions.format(range("TLSv1,TLSv1.1"))).toBe("TLSv1,TLSv1.1")
  })
})
