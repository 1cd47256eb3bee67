import { X509Certificate } from "node:crypto"
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Redacted } from "effect"
import forge from "node-forge"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as TrustStore from "../src/TrustStore.ts"
import { keytoolList } from "./support/keytool.ts"
import { pki, pkiPath } from "./support/pki.ts"

const root = new X509Certificate(pki("root-ca.der"))
const unrelated = new X509Certificate(pki("unrelated-ca.crt"))
const intermediate = new X509Certificate(pki("intermediate-ca.crt"))

let scratch: string
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "spoc-trust-edit-"))
})
afterEach(() => rmSync(scratch, { recursive: true, force: true }))

const copy = (fixture: string, name = fixture): string => {
  const path = join(scratch, name)
  copyFileSync(pkiPath(fixture), path)
  return path
}

const store = (path: string, password = "changeit"): TrustStore.TrustStoreConfig => ({
  path,
  password: Redacted.make(password),
  type: "auto",
})

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const failure = async <A, E>(effect: Effect.Effect<A, E>): Promise<E> => {
  const result = await run(Effect.result(effect))
  if (result._tag === "Success") throw new Error("expected a failure")
  return result.failure
}

const listed = async (path: string) =>
  (await run(TrustStore.list(store(path)))).entries.map((e) => [e.alias, e.fingerprint256])

const importInto = (path: string, alias: string, certificate: X509Certificate) =>
  run(TrustStore.importCertificate(store(path), alias, certificate.raw))

describe("trust import keeps the other entries and keytool reads the result", () => {
  it("adds to a JKS store made by keytool", async () => {
    const path = copy("multi.jks")
    const added = await importInto(path, "Intermediate", intermediate)
    expect(added.alias).toBe("intermediate")

    expect(await listed(path)).toEqual([
      ["spoc-test-root", root.fingerprint256],
      ["unrelated", unrelated.fingerprint256],
      ["intermediate", intermediate.fingerprint256],
    ])
    const keytool = keytoolList(path)
    expect(keytool.storeType).toBe("JKS")
    expect(keytool.entries).toEqual([
      {
        alias: "intermediate",
        type: "trustedCertEntry",
        fingerprint256: intermediate.fingerprint256,
      },
      { alias: "spoc-test-root", type: "trustedCertEntry", fingerprint256: root.fingerprint256 },
      { alias: "unrelated", type: "trustedCertEntry", fingerprint256: unrelated.fingerprint256 },
    ])
  })

  it("adds to a PKCS12 store made by keytool", async () => {
    const path = copy("ssl-truststore.p12")
    await importInto(path, "unrelated", unrelated)
    expect(await listed(path)).toEqual([
      ["spoc-test-root", root.fingerprint256],
      ["unrelated", unrelated.fingerprint256],
    ])
    const keytool = keytoolList(path)
    expect(keytool.storeType).toBe("PKCS12")
    expect(keytool.entries.map((e) => [e.alias, e.type, e.fingerprint256])).toEqual([
      ["spoc-test-root", "trustedCertEntry", root.fingerprint256],
      ["unrelated", "trustedCertEntry", unrelated.fingerprint256],
    ])
  })

  it("adds to a PKCS12 store made by openssl, which keytool then lists in full", async () => {
    const path = copy("openssl-truststore.p12")
    expect(keytoolList(path).entries).toEqual([])
    await importInto(path, "unrelated", unrelated)
    expect(
      keytoolList(path)
        .entries.map((e) => e.fingerprint256)
        .sort(),
    ).toEqual([root.fingerprint256, unrelated.fingerprint256].sort())
    expect(await listed(path)).toEqual([
      ["spoc-mail-test-root-ca", root.fingerprint256],
      ["unrelated", unrelated.fingerprint256],
    ])
  })

  it("keeps a private-key entry of a PKCS12 store, still usable", async () => {
    const key = forge.pki.privateKeyFromPem(pki("server.key").toString())
    const cert = forge.pki.certificateFromPem(pki("server.crt").toString())
    const asn1 = forge.pkcs12.toPkcs12Asn1(key, [cert], "changeit", {
      algorithm: "aes256",
      friendlyName: "mail-server",
    })
    const path = join(scratch, "with-key.p12")
    writeFileSync(path, Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary"))

    await importInto(path, "spoc-test-root", root)
    const entries = (await run(TrustStore.list(store(path)))).entries
    expect(entries.map((e) => [e.alias, e.kind])).toEqual([
      ["mail-server", "privateKey"],
      ["spoc-test-root", "trustedCertificate"],
    ])
    expect(keytoolList(path).entries.map((e) => [e.alias, e.type])).toEqual([
      ["mail-server", "PrivateKeyEntry"],
      ["spoc-test-root", "trustedCertEntry"],
    ])
    const reread = forge.pkcs12.pkcs12FromAsn1(
      forge.asn1.fromDer(readFileSync(path).toString("binary")),
      "changeit",
    )
    const keyBag = reread.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag })[
      forge.pki.oids.pkcs8ShroudedKeyBag
    ]![0]!
    expect((keyBag.key as forge.pki.rsa.PrivateKey).n.toString(16)).toBe(key.n.toString(16))
  })

  it("appends to a PEM bundle and keeps its BOM, line endings and other text", async () => {
    const path = copy("root-ca.crlf-bom.crt", "bundle.pem")
    const before = readFileSync(path)
    await importInto(path, "unrelated-ca", unrelated)
    const after = readFileSync(path)
    expect(after.subarray(0, before.length)).toEqual(before)
    const added = after.subarray(before.length).toString("utf8")
    expect(added.startsWith("# alias: unrelated-ca\r\n")).toBe(true)
    expect(added.replace(/\r\n/g, "")).not.toContain("\n")
    expect(await listed(path)).toEqual([
      ["spoc-mail-test-root-ca", root.fingerprint256],
      ["unrelated-ca", unrelated.fingerprint256],
    ])
  })

  it("writes a new file into a folder store", async () => {
    copyFileSync(pkiPath("root-ca.crt"), join(scratch, "root.crt"))
    await importInto(scratch, "unrelated", unrelated)
    expect(readdirSync(scratch).sort()).toEqual(["root.crt", "unrelated.pem"])
    expect(await listed(scratch)).toEqual([
      ["root", root.fingerprint256],
      ["unrelated", unrelated.fingerprint256],
    ])
  })

  for (const format of ["JKS", "PKCS12", "PEM"] as const) {
    it(`creates a new ${format} store when asked`, async () => {
      const path = join(scratch, `new-${format}`)
      await run(
        TrustStore.importCertificate(store(path), "spoc-test-root", root.raw, { create: format }),
      )
      expect(await listed(path)).toEqual([["spoc-test-root", root.fingerprint256]])
      if (format !== "PEM") {
        expect(keytoolList(path).entries.map((e) => e.alias)).toEqual(["spoc-test-root"])
      }
    })
  }

  it("extends an OpenSSL PKCS12 store whose password goes beyond ASCII", async () => {
    const path = join(scratch, "utf8-password.p12")
    copyFileSync(new URL("./fixtures/utf8-password.p12", import.meta.url), path)
    const config = store(path, "pässwörd-€")
    expect(await listed(path).catch(() => "refused with changeit")).toBe("refused with changeit")
    await run(TrustStore.importCertificate(config, "unrelated", unrelated.raw))
    const entries = (await run(TrustStore.list(config))).entries
    expect(entries.map((e) => [e.alias, e.fingerprint256])).toEqual([
      ["spoc-mail-test-root-ca", root.fingerprint256],
      ["unrelated", unrelated.fingerprint256],
    ])
    const wrong = await failure(TrustStore.list(store(path, "passwörd-€")))
    expect(wrong.detail).toContain("password is wrong")
  })

  it("refuses a missing store unless asked to create one", async () => {
    const error = await failure(
      TrustStore.importCertificate(store(join(scratch, "absent")), "x", root.raw),
    )
    expect(error.detail).toBe("does not exist")
  })

  it("refuses an alias that is taken and a certificate that is already there", async () => {
    const path = copy("multi.jks")
    const taken = await failure(TrustStore.importCertificate(store(path), "UNRELATED", root.raw))
    expect(taken.detail).toContain('alias "unrelated"')
    const twice = await failure(TrustStore.importCertificate(store(path), "again", root.raw))
    expect(twice.detail).toContain('under the alias "spoc-test-root"')
    expect(readFileSync(path)).toEqual(pki("multi.jks"))
  })

  it("leaves the store untouched, with no temporary file, when the password is wrong", async () => {
    const path = copy("ssl-truststore.p12")
    const error = await failure(
      TrustStore.importCertificate(store(path, "wrong-password"), "unrelated", unrelated.raw),
    )
    expect(error.detail).toContain("password is wrong")
    expect(readFileSync(path)).toEqual(pki("ssl-truststore.p12"))
    expect(readdirSync(scratch)).toEqual(["ssl-truststore.p12"])
  })

  it("protects a written store with its password, as keytool checks it", async () => {
    const path = copy("ssl-truststore", "store")
    await importInto(path, "unrelated", unrelated)
    expect(keytoolList(path, "changeit").entries).toHaveLength(2)
    const wrong = await failure(TrustStore.list(store(path, "not-changeit")))
    expect(wrong.detail).toContain("integrity check")
  })
})

describe("trust remove deletes one entry by alias", () => {
  it("removes from JKS, and keytool sees the rest", async () => {
    const path = copy("multi.jks")
    const removed = await run(TrustStore.removeCertificate(store(path), "Unrelated"))
    expect(removed.fingerprint256).toBe(unrelated.fingerprint256)
    expect(keytoolList(path).entries.map((e) => e.alias)).toEqual(["spoc-test-root"])
  })

  it("removes from PKCS12 and PEM", async () => {
    const p12 = copy("ssl-truststore.p12")
    await importInto(p12, "unrelated", unrelated)
    await run(TrustStore.removeCertificate(store(p12), "spoc-test-root"))
    expect(await listed(p12)).toEqual([["unrelated", unrelated.fingerprint256]])

    const pem = copy("bundle.crt")
    await importInto(pem, "intermediate", intermediate)
    await run(TrustStore.removeCertificate(store(pem), "intermediate"))
    expect(readFileSync(pem)).toEqual(pki("bundle.crt"))
  })

  it("removes a file from a folder store", async () => {
    copyFileSync(pkiPath("root-ca.crt"), join(scratch, "root.crt"))
    copyFileSync(pkiPath("unrelated-ca.crt"), join(scratch, "unrelated.crt"))
    await run(TrustStore.removeCertificate(store(scratch), "unrelated"))
    expect(readdirSync(scratch)).toEqual(["root.crt"])
  })

  it("names the aliases there are when the alias is unknown", async () => {
    const error = await failure(TrustStore.removeCertificate(store(copy("multi.jks")), "nope"))
    expect(error.detail).toContain('no entry with the alias "nope"')
    expect(error.fix).toContain("spoc-test-root, unrelated")
  })

  it("refuses to leave a store empty", async () => {
    const path = copy("ssl-truststore")
    const error = await failure(TrustStore.removeCertificate(store(path), "spoc-test-root"))
    expect(error.detail).toContain("empty")
    expect(readFileSync(path)).toEqual(pki("ssl-truststore"))
  })
})

describe("certificates to import", () => {
  it("reads one PEM or DER certificate and refuses a bundle", async () => {
    const pem = await run(TrustStore.readCertificateFile(pkiPath("root-ca.crt")))
    const der = await run(TrustStore.readCertificateFile(pkiPath("root-ca.der")))
    expect(Buffer.from(pem)).toEqual(Buffer.from(der))
    const bundle = await failure(TrustStore.readCertificateFile(pkiPath("bundle.crt")))
    expect(bundle.detail).toContain("holds 2 certificates")
  })
})
