import { describe, expect, it } from "vitest"
import forge from "node-forge"
import * as Der from "../src/internal/der.ts"
import * as Jks from "../src/internal/jks.ts"
import { pkcs12Kdf } from "../src/internal/pkcs12.ts"
import { pki } from "./support/pki.ts"

describe("JKS files", () => {
  it("are written back byte for byte as keytool wrote them", () => {
    for (const file of ["ssl-truststore.jks", "multi.jks", "unrelated-only.jks"]) {
      const bytes = pki(file)
      expect(Jks.writeJks(Jks.readJks(bytes, "changeit"), "changeit"), file).toEqual(bytes)
    }
  })

  it("keep aliases beyond ASCII in Java's modified UTF-8", () => {
    for (const alias of ["tiskové-služby", "根证书", "nul\u0000inside", "😀 root"]) {
      expect(Jks.decodeModifiedUtf8(Jks.encodeModifiedUtf8(alias))).toBe(alias)
    }
    // NUL and supplementary characters are where modified UTF-8 differs from UTF-8.
    expect([...Jks.encodeModifiedUtf8("\u0000")]).toEqual([0xc0, 0x80])
    expect(Jks.encodeModifiedUtf8("😀")).toHaveLength(6)
  })

  it("check their digest with the password", () => {
    const store = Jks.readJks(pki("multi.jks"), "changeit")
    const written = Jks.writeJks(store, "another password")
    expect(Jks.readJks(written, "another password").entries).toHaveLength(2)
    expect(() => Jks.readJks(written, "changeit")).toThrow(/integrity check/)
  })
})

describe("PKCS#12 key derivation", () => {
  it("matches node-forge's RFC 7292 implementation for the MAC key", () => {
    const salt = Buffer.from("0102030405060708090a0b0c0d0e0f1011121314", "hex")
    const ours = pkcs12Kdf("changeit", salt, 3, 2048, 32, "sha256")
    const theirs = forge.pkcs12.generateKey(
      "changeit",
      forge.util.createBuffer(salt.toString("binary")),
      3,
      2048,
      32,
      forge.md.sha256.create(),
    )
    expect(ours.toString("hex")).toBe(forge.util.bytesToHex(theirs.getBytes()))
  })
})

describe("DER", () => {
  it("round-trips object identifiers and lengths over 127 bytes", () => {
    const oid = "2.16.840.1.113894.746875.1.1"
    expect(Der.oid(Der.read(Der.objectIdentifier(oid)))).toBe(oid)
    const long = Der.octetString(Buffer.alloc(300, 7))
    const element = Der.read(long)
    expect(Der.content(element)).toHaveLength(300)
    expect(() => Der.read(long.subarray(0, 100))).toThrow(/more bytes/)
  })
})
