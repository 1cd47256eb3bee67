/**
 * PKCS#12 trust stores (RFC 7292): the ones keytool writes (PBES2 with
 * AES-256-CBC, HMAC-SHA256 integrity) and the ones `openssl pkcs12 -export`
 * writes, older ciphers included.
 *
 * Reading goes through node-forge, which checks the MAC and decrypts every
 * cipher those tools have used (including RC2 and 3DES, which this Node's
 * OpenSSL 3 no longer offers). Writing is ours, in keytool's modern form:
 * certificates in one PBES2/AES-256-CBC encrypted SafeContents, each with its
 * friendly name (the alias) and Oracle's trusted-key-usage attribute so that
 * keytool lists it as a trustedCertEntry; private keys, if a store has them,
 * re-encrypted as PBES2 shrouded key bags; an HMAC-SHA256 MAC over it all.
 *
 * Passwords beyond ASCII: node-forge gives PBKDF2 the password as Latin-1
 * where Java and OpenSSL use UTF-8, so for those we check the MAC ourselves
 * and hand forge the UTF-8 bytes.
 */
import {
  createCipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  pbkdf2Sync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto"
import forge from "node-forge"
import * as Der from "./der.ts"
import { StoreProblem, wrongPasswordFix } from "./storeProblem.ts"

export type Pkcs12Entry =
  | {
      readonly kind: "trustedCertificate"
      /** The friendly name; `undefined` for bags without one (openssl -export writes none). */
      readonly alias: string | undefined
      readonly certificate: Uint8Array
    }
  | {
      readonly kind: "privateKey"
      readonly alias: string | undefined
      /** The unencrypted PKCS#8 PrivateKeyInfo, held only while the store is rewritten. */
      readonly privateKeyInfo: Uint8Array
      readonly localKeyId: Uint8Array
      /** The key's certificate, when the file has one with the same localKeyId. */
      readonly certificate: Uint8Array | undefined
    }

const oids = {
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  shroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
  oracleTrustedKeyUsage: "2.16.840.1.113894.746875.1.1",
  anyExtendedKeyUsage: "2.5.29.37.0",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSha256: "1.2.840.113549.2.9",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
  sha256: "2.16.840.1.101.3.4.2.1",
} as const

/**
 * Whether the bytes are a PKCS#12 PFX: a SEQUENCE holding version 3 and a
 * ContentInfo of type data or signedData.
 */
export const looksLikePkcs12 = (bytes: Uint8Array): boolean => {
  try {
    const pfx = Der.read(bytes)
    if (pfx.tag !== Der.Tag.sequence || pfx.end !== bytes.length) return false
    const [version, authSafe] = Der.children(pfx)
    if (version?.tag !== Der.Tag.integer || Der.smallInteger(version) !== 3) return false
    const [contentType] = Der.children(Der.expect(authSafe, Der.Tag.sequence, "authSafe"))
    const type = Der.oid(Der.expect(contentType, Der.Tag.oid, "contentType"))
    return type === oids.data || type === "1.2.840.113549.1.7.2"
  } catch {
    return false
  }
}

const toBinary = (bytes: Uint8Array): string => Buffer.from(bytes).toString("binary")
const fromBinary = (text: string): Uint8Array => Buffer.from(text, "binary")

const certificateDer = (bag: forge.pkcs12.Bag): Uint8Array => {
  const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1
  return fromBinary(forge.asn1.toDer(asn1).getBytes())
}

const privateKeyInfoDer = (bag: forge.pkcs12.Bag): Uint8Array => {
  const asn1 = bag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key)) : bag.asn1
  return fromBinary(forge.asn1.toDer(asn1).getBytes())
}

const firstAttribute = (bag: forge.pkcs12.Bag, name: string): string | undefined => {
  const values = (bag.attributes as Record<string, Array<string> | undefined>)[name]
  return values?.[0]
}

/** Reads a PKCS#12 file, checking its MAC with the password. */
export const readPkcs12 = (bytes: Uint8Array, password: string): Array<Pkcs12Entry> => {
  // node-forge hands one string to both the MAC (UTF-16, right) and PBKDF2 (as Latin-1,
  // where Java and OpenSSL use UTF-8). With a non-ASCII password, check the MAC ourselves
  // and let forge decrypt with the UTF-8 bytes first: decrypting with forge's own key
  // gives garbage that, now and then, passes the padding check and fails as "damaged".
  if (/[^\x00-\x7f]/.test(password)) {
    const utf8 = readWithUtf8Password(bytes, password)
    if (utf8 !== undefined) return entriesOf(utf8)
  }
  let pfx: forge.pkcs12.Pkcs12Pfx
  try {
    pfx = forgeRead(bytes, password)
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause)
    const passwordProblem = /MAC could not be verified|Invalid password|wrong password|decrypt/i
    if (passwordProblem.test(message)) {
      throw new StoreProblem(
        "fails its integrity check: the password is wrong or the file is damaged",
        wrongPasswordFix,
        { cause },
      )
    }
    throw new StoreProblem(
      `is a damaged PKCS#12 file (${message})`,
      "copy the trust store again from its source",
      { cause },
    )
  }
  return entriesOf(pfx)
}

const forgeRead = (bytes: Uint8Array, password: string): forge.pkcs12.Pkcs12Pfx =>
  forge.pkcs12.pkcs12FromAsn1(
    forge.asn1.fromDer(forge.util.createBuffer(toBinary(bytes)), false),
    false,
    password,
  )

const macHashes: Readonly<Record<string, string>> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
}

/** The PFX without its MAC when the MAC verifies with `password`; `undefined` otherwise. */
const verifiedWithoutMac = (bytes: Uint8Array, password: string): Uint8Array | undefined => {
  try {
    const [version, authSafe, macData] = Der.children(Der.read(bytes))
    const [, wrapped] = Der.children(authSafe!)
    const [octets] = Der.children(wrapped!)
    const [digestInfo, salt, count] = Der.children(macData!)
    const [algorithm, digest] = Der.children(digestInfo!)
    const hash = macHashes[Der.oid(Der.children(algorithm!)[0]!)]
    if (hash === undefined) return undefined
    const expected = Buffer.from(Der.content(digest!))
    const iterations = count === undefined ? 1 : Der.smallInteger(count)
    const key = pkcs12Kdf(password, Der.content(salt!), 3, iterations, expected.length, hash)
    const mac = createHmac(hash, key).update(Der.content(octets!)).digest()
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined
    return Der.sequence(Der.encoded(version!), Der.encoded(authSafe!))
  } catch {
    return undefined
  }
}

const readWithUtf8Password = (
  bytes: Uint8Array,
  password: string,
): forge.pkcs12.Pkcs12Pfx | undefined => {
  const withoutMac = verifiedWithoutMac(bytes, password)
  if (withoutMac === undefined) return undefined
  try {
    return forgeRead(withoutMac, Buffer.from(password, "utf8").toString("binary"))
  } catch {
    return undefined
  }
}

const entriesOf = (pfx: forge.pkcs12.Pkcs12Pfx): Array<Pkcs12Entry> => {
  const bags = pfx.safeContents.flatMap((contents) => contents.safeBags)
  const keyBags = bags.filter(
    (b) => b.type === oids.shroudedKeyBag || b.type === forge.pki.oids.keyBag,
  )
  const keyIds = new Set(keyBags.map((b) => firstAttribute(b, "localKeyId")))
  const entries: Array<Pkcs12Entry> = []

  for (const bag of keyBags) {
    const localKeyId = firstAttribute(bag, "localKeyId") ?? ""
    const certificateBag = bags.find(
      (b) => b.type === oids.certBag && firstAttribute(b, "localKeyId") === localKeyId,
    )
    entries.push({
      kind: "privateKey",
      alias: firstAttribute(bag, "friendlyName"),
      privateKeyInfo: privateKeyInfoDer(bag),
      localKeyId: fromBinary(localKeyId),
      certificate: certificateBag === undefined ? undefined : certificateDer(certificateBag),
    })
  }
  for (const bag of bags) {
    if (bag.type !== oids.certBag) continue
    const localKeyId = firstAttribute(bag, "localKeyId")
    if (localKeyId !== undefined && keyIds.has(localKeyId)) continue
    entries.push({
      kind: "trustedCertificate",
      alias: firstAttribute(bag, "friendlyName"),
      certificate: certificateDer(bag),
    })
  }
  return entries
}

// Writing.

/** RFC 7292 appendix B.2: the PKCS#12 key derivation, here for the MAC key (ID 3). */
export const pkcs12Kdf = (
  password: string,
  salt: Uint8Array,
  id: number,
  iterations: number,
  length: number,
  hash = "sha256",
): Buffer => {
  const u = createHash(hash).digest().length
  const v = hash === "sha384" || hash === "sha512" ? 128 : 64
  const passwordBmp = Buffer.alloc((password.length + 1) * 2)
  for (let i = 0; i < password.length; i++) passwordBmp.writeUInt16BE(password.charCodeAt(i), i * 2)
  const fill = (source: Uint8Array): Buffer => {
    const size = v * Math.ceil(source.length / v)
    const out = Buffer.alloc(size)
    for (let i = 0; i < size; i++) out[i] = source[i % source.length]!
    return out
  }
  const d = Buffer.alloc(v, id)
  const input = Buffer.concat([fill(salt), fill(passwordBmp)])
  const output: Array<Buffer> = []
  for (let produced = 0; produced < length; produced += u) {
    let a = createHash(hash).update(d).update(input).digest()
    for (let r = 1; r < iterations; r++) a = createHash(hash).update(a).digest()
    output.push(a)
    const b = fill(a)
    for (let j = 0; j < input.length; j += v) {
      let carry = 1
      for (let k = v - 1; k >= 0; k--) {
        const sum = input[j + k]! + b[k]! + carry
        input[j + k] = sum & 0xff
        carry = sum >> 8
      }
    }
  }
  return Buffer.concat(output).subarray(0, length)
}

const iterations = 10_000

const pbes2Algorithm = (salt: Uint8Array, iv: Uint8Array): Uint8Array =>
  Der.sequence(
    Der.objectIdentifier(oids.pbes2),
    Der.sequence(
      Der.sequence(
        Der.objectIdentifier(oids.pbkdf2),
        Der.sequence(
          Der.octetString(salt),
          Der.integer(iterations),
          Der.integer(32),
          Der.sequence(Der.objectIdentifier(oids.hmacWithSha256), Der.nullValue()),
        ),
      ),
      Der.sequence(Der.objectIdentifier(oids.aes256Cbc), Der.octetString(iv)),
    ),
  )

const encryptPbes2 = (
  plain: Uint8Array,
  password: string,
): { algorithm: Uint8Array; ciphertext: Buffer } => {
  const salt = randomBytes(20)
  const iv = randomBytes(16)
  const key = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256")
  const cipher = createCipheriv("aes-256-cbc", key, iv)
  return {
    algorithm: pbes2Algorithm(salt, iv),
    ciphertext: Buffer.concat([cipher.update(plain), cipher.final()]),
  }
}

const attribute = (oid: string, ...values: ReadonlyArray<Uint8Array>): Uint8Array =>
  Der.sequence(Der.objectIdentifier(oid), Der.setOf(...values))

const safeBag = (
  bagId: string,
  value: Uint8Array,
  attributes: ReadonlyArray<Uint8Array>,
): Uint8Array =>
  Der.sequence(
    Der.objectIdentifier(bagId),
    Der.explicit0(value),
    ...(attributes.length === 0 ? [] : [Der.setOf(...attributes)]),
  )

const certBag = (der: Uint8Array): Uint8Array =>
  Der.sequence(Der.objectIdentifier(oids.x509Certificate), Der.explicit0(Der.octetString(der)))

const dataContentInfo = (content: Uint8Array): Uint8Array =>
  Der.sequence(Der.objectIdentifier(oids.data), Der.explicit0(Der.octetString(content)))

/** Writes the entries as a PKCS#12 file keytool and openssl read. */
export const writePkcs12 = (entries: ReadonlyArray<Pkcs12Entry>, password: string): Buffer => {
  const keyBags: Array<Uint8Array> = []
  const certBags: Array<Uint8Array> = []

  for (const entry of entries) {
    const name =
      entry.alias === undefined ? [] : [attribute(oids.friendlyName, Der.bmpString(entry.alias))]
    if (entry.kind === "trustedCertificate") {
      const trusted = attribute(
        oids.oracleTrustedKeyUsage,
        Der.objectIdentifier(oids.anyExtendedKeyUsage),
      )
      certBags.push(safeBag(oids.certBag, certBag(entry.certificate), [...name, trusted]))
      continue
    }
    const keyId = attribute(oids.localKeyId, Der.octetString(entry.localKeyId))
    const shrouded = createPrivateKey({
      key: Buffer.from(entry.privateKeyInfo),
      format: "der",
      type: "pkcs8",
    }).export({ type: "pkcs8", format: "der", cipher: "aes-256-cbc", passphrase: password })
    keyBags.push(safeBag(oids.shroudedKeyBag, shrouded, [...name, keyId]))
    if (entry.certificate !== undefined) {
      certBags.push(safeBag(oids.certBag, certBag(entry.certificate), [...name, keyId]))
    }
  }

  const encrypted = encryptPbes2(Der.sequence(...certBags), password)
  const encryptedContentInfo = Der.sequence(
    Der.objectIdentifier(oids.encryptedData),
    Der.explicit0(
      Der.sequence(
        Der.integer(0),
        Der.sequence(
          Der.objectIdentifier(oids.data),
          encrypted.algorithm,
          Der.element(0x80, encrypted.ciphertext),
        ),
      ),
    ),
  )
  const authenticatedSafe = Der.sequence(
    ...(keyBags.length === 0 ? [] : [dataContentInfo(Der.sequence(...keyBags))]),
    encryptedContentInfo,
  )

  const macSalt = randomBytes(20)
  const macKey = pkcs12Kdf(password, macSalt, 3, iterations, 32)
  const mac = createHmac("sha256", macKey).update(authenticatedSafe).digest()
  return Buffer.from(
    Der.sequence(
      Der.integer(3),
      dataContentInfo(authenticatedSafe),
      Der.sequence(
        Der.sequence(
          Der.sequence(Der.objectIdentifier(oids.sha256), Der.nullValue()),
          Der.octetString(mac),
        ),
        Der.octetString(macSalt),
        Der.integer(iterations),
      ),
    ),
  )
}
