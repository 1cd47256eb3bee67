import { X509Certificate } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import { Effect, Redacted } from "effect"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import type { TrustStoreType } from "../src/Settings.ts"
import * as TrustStore from "../src/TrustStore.ts"
import { pki, pkiPath, pkiText } from "./support/pki.ts"

const root = new X509Certificate(pki("root-ca.der"))
const unrelated = new X509Certificate(pki("unrelated-ca.crt"))

const config = (
  path: string,
  password = "changeit",
  type: TrustStoreType = "auto",
): TrustStore.TrustStoreConfig => ({ path, password: Redacted.make(password), type })

const load = (path: string, password?: string, type?: TrustStoreType) =>
  Effect.runPromise(TrustStore.load(config(path, password, type)))

const loadError = async (path: string, password?: string, type?: TrustStoreType) => {
  const result = await Effect.runPromise(
    Effect.result(TrustStore.load(config(path, password, type))),
  )
  if (result._tag === "Success") throw new Error(`${path} loaded`)
  return result.failure
}

let scratch: string
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "spoc-trust-"))
})
afterEach(() => rmSync(scratch, { recursive: true, force: true }))

const scratchFile = (name: string, bytes: Uint8Array | string): string => {
  const path = join(scratch, name)
  writeFileSync(path, bytes)
  return path
}

const fingerprints = (store: TrustStore.TrustStoreShape) =>
  store.certificates.map((c) => c.fingerprint256)

describe("every trust store fixture loads with the right certificates (C11, C12)", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<X509Certificate>, string]> = [
    ["root-ca.crt", [root], "PEM"],
    ["root-ca.der", [root], "DER"],
    ["root-ca.crlf-bom.crt", [root], "PEM"],
    ["bundle.crt", [root, unrelated], "PEM"],
    ["ssl-truststore", [root], "JKS"],
    ["ssl-truststore.jks", [root], "JKS"],
    ["ssl-truststore.p12", [root], "PKCS12"],
    ["openssl-truststore.p12", [root], "PKCS12"],
    ["multi.jks", [root, unrelated], "JKS"],
    ["unrelated-only.jks", [unrelated], "JKS"],
  ]
  for (const [file, expected, format] of cases) {
    it(`reads ${file} as ${format}`, async () => {
      const store = await load(pkiPath(file))
      expect(store.format).toBe(format)
      expect(fingerprints(store)).toEqual(expected.map((c) => c.fingerprint256))
      expect(store.certificates[0]!.subject).toBe(expected[0]!.subject.split("\n").join(", "))
    })
  }

  it("uses keytool's aliases, and the subject's name where a store has none", async () => {
    const aliases = async (file: string) =>
      (await load(pkiPath(file))).certificates.map((c) => c.alias)
    expect(await aliases("multi.jks")).toEqual(["spoc-test-root", "unrelated"])
    expect(await aliases("ssl-truststore.p12")).toEqual(["spoc-test-root"])
    expect(await aliases("openssl-truststore.p12")).toEqual(["spoc-mail-test-root-ca"])
  })

  it("keeps the system roots and adds the store to them", async () => {
    const store = await load(pkiPath("ssl-truststore"))
    expect(store.ca.length).toBe(tls.rootCertificates.length + 1)
    expect(store.ca.slice(0, tls.rootCertificates.length)).toEqual([...tls.rootCertificates])
    expect(store.ca[store.ca.length - 1]).toBe(root.toString())
  })

  it("trusts only the system roots when no store is configured", async () => {
    const store = await Effect.runPromise(
      TrustStore.load({ path: undefined, password: Redacted.make("changeit"), type: "auto" }),
    )
    expect(store.certificates).toEqual([])
    expect(store.ca).toEqual([...tls.rootCertificates])
  })
})

describe("PEM files as administrators have them", () => {
  it("reads UTF-16 with a BOM, as a Windows editor saves it", async () => {
    const text = pkiText("root-ca.crt").replace(/\n/g, "\r\n")
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")])
    expect(fingerprints(await load(scratchFile("root-utf16.crt", utf16)))).toEqual([
      root.fingerprint256,
    ])
  })

  it("reads bundles with text between the blocks and takes aliases from it", async () => {
    const text =
      "Bag Attributes\n    friendlyName: private-root\nsubject=CN = Spoc Mail Test Root CA\n" +
      pkiText("root-ca.crt") +
      "\nsome notes about the next one\n# alias: other-ca\n" +
      pkiText("unrelated-ca.crt") +
      "trailing words\n"
    const store = await load(scratchFile("annotated.pem", text))
    expect(store.certificates.map((c) => c.alias)).toEqual(["private-root", "other-ca"])
  })

  it("reads OpenSSL's TRUSTED CERTIFICATE blocks as the certificate they hold", async () => {
    const aux = Buffer.from([0x30, 0x03, 0x0c, 0x01, 0x78])
    const body = Buffer.concat([pki("root-ca.der"), aux]).toString("base64")
    const lines = body.match(/.{1,64}/g)!.join("\n")
    const text =
      `-----BEGIN TRUSTED CERTIFICATE-----\n${lines}\n` + "-----END TRUSTED CERTIFICATE-----\n"
    expect(fingerprints(await load(scratchFile("trusted.pem", text)))).toEqual([
      root.fingerprint256,
    ])
  })

  it("reads a folder of PEM and DER files and skips files without certificates", async () => {
    scratchFile("root.der", pki("root-ca.der"))
    scratchFile("unrelated.pem", pki("unrelated-ca.crt"))
    scratchFile("README.txt", "certificates for the mail server\n")
    scratchFile(".hidden", "not read")
    const store = await load(scratch)
    expect(store.format).toBe("folder")
    expect(store.certificates.map((c) => c.alias)).toEqual(["root", "unrelated"])
    expect(fingerprints(store)).toEqual([root.fingerprint256, unrelated.fingerprint256])
    expect(store.skipped).toEqual(["README.txt: no certificate"])
  })

  it("refuses a folder without certificates", async () => {
    scratchFile("README.txt", "nothing here\n")
    const error = await loadError(scratch)
    expect(error.message).toContain(scratch)
    expect(error.detail).toContain("holds no certificate")
  })
})

describe("damaged stores and wrong passwords are errors naming the file (C12)", () => {
  const secret = "N0t-The-Right-0ne"

  for (const file of ["ssl-truststore", "ssl-truststore.p12", "openssl-truststore.p12"]) {
    it(`refuses ${file} with a wrong password, without showing the password`, async () => {
      const error = await loadError(pkiPath(file), secret)
      expect(error._tag).toBe("TrustStoreError")
      expect(error.path).toBe(pkiPath(file))
      expect(error.message).toContain(pkiPath(file))
      expect(error.detail).toContain("password is wrong")
      expect(error.fix).toContain("trustStorePassword")
      expect(`${error.message} ${JSON.stringify(error)}`).not.toContain(secret)
    })
  }

  for (const file of [
    "ssl-truststore",
    "ssl-truststore.p12",
    "openssl-truststore.p12",
    "root-ca.crt",
    "root-ca.der",
  ]) {
    it(`refuses ${file} cut short`, async () => {
      const bytes = pki(file)
      const path = scratchFile(`cut-${file}`, bytes.subarray(0, Math.floor(bytes.length * 0.6)))
      const error = await loadError(path)
      expect(error.path).toBe(path)
      expect(error.message).toMatch(/truncated|ends early|damaged|ends after/)
    })
  }

  it("refuses a JKS file whose certificate bytes were altered", async () => {
    const bytes = Buffer.from(pki("ssl-truststore"))
    bytes[200] = bytes[200]! ^ 0xff
    const error = await loadError(scratchFile("altered", bytes))
    expect(error.detail).toContain("integrity check")
  })

  it("refuses a missing file, an empty file and a file of another kind", async () => {
    expect((await loadError(join(scratch, "absent"))).detail).toBe("does not exist")
    expect((await loadError(scratchFile("empty", ""))).detail).toBe("is empty")
    expect((await loadError(pkiPath("server.key"))).detail).toContain("not a trust store")
  })

  it("honours trustStoreType and says what the file really is", async () => {
    const asJks = await loadError(pkiPath("ssl-truststore.p12"), "changeit", "JKS")
    expect(asJks.detail).toBe("is a PKCS#12 store, but trustStoreType is JKS")
    expect(asJks.fix).toContain("PKCS12")
    expect((await loadError(pkiPath("ssl-truststore"), "changeit", "PKCS12")).detail).toBe(
      "is a JKS store, but trustStoreType is PKCS12",
    )
    expect((await loadError(pkiPath("multi.jks"), "changeit", "PEM")).detail).toContain("JKS")
    expect((await loadError(pkiPath("root-ca.crt"), "changeit", "JKS")).detail).toContain("PEM")
    expect(fingerprints(await load(pkiPath("ssl-truststore"), "changeit", "JKS"))).toEqual([
      root.fingerprint256,
    ])
    expect(fingerprints(await load(pkiPath("root-ca.der"), "changeit", "PEM"))).toEqual([
      root.fingerprint256,
    ])
  })
})
