/**
 * Java KeyStore (JKS) files, read and written by our own code: keytool's
 * historic default format and the usual `ssl-truststore` of a Java product.
 *
 * Layout (big-endian, as `sun.security.provider.JavaKeyStore` writes it):
 * magic 0xFEEDFEED, version (1 or 2), entry count, then per entry a tag
 * (1 private key, 2 trusted certificate), the alias in Java's modified UTF-8,
 * the creation date in milliseconds, and either the protected key with its
 * certificate chain or one certificate (version 2 prefixes each certificate
 * with its type, "X.509"). The file ends with a SHA-1 digest over the
 * password as UTF-16BE, the words "Mighty Aphrodite" and every byte before
 * the digest: that is how a wrong password or a damaged file shows.
 *
 * JCEKS files (magic 0xCECECECE) share the layout; their secret-key entries
 * (tag 3, a serialized Java object) cannot be read here and are refused.
 * Protected private keys are kept as opaque bytes: they are never decrypted,
 * only carried over when the file is rewritten.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { StoreProblem, wrongPasswordFix } from "./storeProblem.ts"

export const jksMagic = 0xfeedfeed
export const jceksMagic = 0xcececece

export type JksEntry =
  | {
      readonly kind: "trustedCertificate"
      readonly alias: string
      readonly date: Date
      readonly certificate: Uint8Array
      readonly certificateType: string
    }
  | {
      readonly kind: "privateKey"
      readonly alias: string
      readonly date: Date
      /** The key as protected by keytool, never decrypted here. */
      readonly protectedKey: Uint8Array
      readonly chain: ReadonlyArray<{ readonly type: string; readonly der: Uint8Array }>
    }

export interface JksStore {
  readonly type: "JKS" | "JCEKS"
  readonly entries: ReadonlyArray<JksEntry>
}

const whitener = Buffer.from("Mighty Aphrodite", "utf8")

/** The password as Java hands it to the digest: each UTF-16 code unit, high byte first. */
const passwordBytes = (password: string): Buffer => {
  const bytes = Buffer.alloc(password.length * 2)
  for (let i = 0; i < password.length; i++) bytes.writeUInt16BE(password.charCodeAt(i), i * 2)
  return bytes
}

const integrityDigest = (password: string, body: Uint8Array): Buffer =>
  createHash("sha1").update(passwordBytes(password)).update(whitener).update(body).digest()

/** Java's modified UTF-8 (DataInput.readUTF): UTF-16 code units, NUL as two bytes. */
export const decodeModifiedUtf8 = (bytes: Uint8Array): string => {
  let text = ""
  for (let i = 0; i < bytes.length;) {
    const a = bytes[i]!
    if (a < 0x80) {
      text += String.fromCharCode(a)
      i += 1
    } else if ((a & 0xe0) === 0xc0 && i + 1 < bytes.length) {
      text += String.fromCharCode(((a & 0x1f) << 6) | (bytes[i + 1]! & 0x3f))
      i += 2
    } else if ((a & 0xf0) === 0xe0 && i + 2 < bytes.length) {
      const unit = ((a & 0x0f) << 12) | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f)
      text += String.fromCharCode(unit)
      i += 3
    } else {
      throw new StoreProblem(
        "holds an alias that is not valid modified UTF-8",
        "recreate the entry",
      )
    }
  }
  return text
}

/** Java's modified UTF-8 (DataOutput.writeUTF), without the length prefix. */
export const encodeModifiedUtf8 = (text: string): Buffer => {
  const bytes: Array<number> = []
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0x01 && unit <= 0x7f) bytes.push(unit)
    else if (unit <= 0x7ff) bytes.push(0xc0 | (unit >> 6), 0x80 | (unit & 0x3f))
    else bytes.push(0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f))
  }
  return Buffer.from(bytes)
}

class Reader {
  offset = 0
  constructor(readonly bytes: Buffer) {}

  private need(count: number): void {
    if (this.offset + count > this.bytes.length) {
      throw new StoreProblem(
        `ends after ${this.bytes.length} bytes, in the middle of an entry (truncated?)`,
        "copy the trust store again from its source",
      )
    }
  }
  u16(): number {
    this.need(2)
    const value = this.bytes.readUInt16BE(this.offset)
    this.offset += 2
    return value
  }
  u32(): number {
    this.need(4)
    const value = this.bytes.readUInt32BE(this.offset)
    this.offset += 4
    return value
  }
  u64(): number {
    this.need(8)
    const value = Number(this.bytes.readBigUInt64BE(this.offset))
    this.offset += 8
    return value
  }
  take(count: number): Uint8Array {
    this.need(count)
    const value = this.bytes.subarray(this.offset, this.offset + count)
    this.offset += count
    return value
  }
  utf(): string {
    return decodeModifiedUtf8(this.take(this.u16()))
  }
}

/** Whether the bytes start like a JKS or JCEKS file. */
export const looksLikeJks = (bytes: Uint8Array): "JKS" | "JCEKS" | undefined => {
  if (bytes.length < 4) return undefined
  const magic = Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32BE(0)
  return magic === jksMagic ? "JKS" : magic === jceksMagic ? "JCEKS" : undefined
}

/** Reads a JKS or JCEKS file and checks its integrity digest with the password. */
export const readJks = (bytes: Uint8Array, password: string): JksStore => {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const type = looksLikeJks(buffer)
  if (type === undefined) {
    throw new StoreProblem("is not a JKS file", "set trustStoreType to the file's real type")
  }
  const reader = new Reader(buffer)
  reader.u32()
  const version = reader.u32()
  if (version !== 1 && version !== 2) {
    throw new StoreProblem(
      `is a JKS file of unknown version ${version}`,
      "re-export it with keytool",
    )
  }
  const count = reader.u32()
  const certificate = () => {
    const certType = version === 2 ? reader.utf() : "X.509"
    return { type: certType, der: reader.take(reader.u32()) }
  }

  const entries: Array<JksEntry> = []
  for (let i = 0; i < count; i++) {
    const tag = reader.u32()
    const alias = reader.utf()
    const date = new Date(reader.u64())
    if (tag === 1) {
      const protectedKey = reader.take(reader.u32())
      const chainLength = reader.u32()
      const chain = Array.from({ length: chainLength }, certificate)
      entries.push({ kind: "privateKey", alias, date, protectedKey, chain })
    } else if (tag === 2) {
      const { type: certificateType, der } = certificate()
      entries.push({ kind: "trustedCertificate", alias, date, certificate: der, certificateType })
    } else if (tag === 3 && type === "JCEKS") {
      throw new StoreProblem(
        `is a JCEKS file with a secret-key entry ("${alias}"), which spoc-mail cannot read`,
        "convert it: keytool -importkeystore -srcstoretype JCEKS -deststoretype PKCS12",
      )
    } else {
      throw new StoreProblem(
        `holds an entry of unknown kind ${tag} at byte ${reader.offset} (damaged?)`,
        "copy the trust store again from its source",
      )
    }
  }

  const bodyEnd = reader.offset
  const stored = reader.take(20)
  if (reader.offset !== buffer.length) {
    throw new StoreProblem(
      `has ${buffer.length - reader.offset} unexpected bytes after its digest (damaged?)`,
      "copy the trust store again from its source",
    )
  }
  const expected = integrityDigest(password, buffer.subarray(0, bodyEnd))
  if (!timingSafeEqual(expected, stored)) {
    throw new StoreProblem(
      "fails its integrity check: the password is wrong or the file is damaged",
      wrongPasswordFix,
    )
  }
  return { type, entries }
}

const u32 = (value: number): Buffer => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

const utf = (text: string): Buffer => {
  const bytes = encodeModifiedUtf8(text)
  if (bytes.length > 0xffff) throw new StoreProblem("an alias is too long", "use a shorter alias")
  const length = Buffer.alloc(2)
  length.writeUInt16BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** JKS aliases are case-insensitive; keytool stores them in lower case. */
export const jksAlias = (alias: string): string => alias.toLowerCase()

/** Writes a version-2 JKS (or JCEKS) file with its integrity digest. */
export const writeJks = (store: JksStore, password: string): Buffer => {
  const parts: Array<Buffer> = [
    u32(store.type === "JCEKS" ? jceksMagic : jksMagic),
    u32(2),
    u32(store.entries.length),
  ]
  for (const entry of store.entries) {
    const date = Buffer.alloc(8)
    date.writeBigUInt64BE(BigInt(Math.max(0, entry.date.getTime())))
    if (entry.kind === "trustedCertificate") {
      parts.push(u32(2), utf(jksAlias(entry.alias)), date, utf(entry.certificateType))
      parts.push(u32(entry.certificate.length), Buffer.from(entry.certificate))
    } else {
      parts.push(u32(1), utf(jksAlias(entry.alias)), date)
      parts.push(u32(entry.protectedKey.length), Buffer.from(entry.protectedKey))
      parts.push(u32(entry.chain.length))
      for (const link of entry.chain) {
        parts.push(utf(link.type), u32(link.der.length), Buffer.from(link.der))
      }
    }
  }
  const body = Buffer.concat(parts)
  return Buffer.concat([body, integrityDigest(password, body)])
}
