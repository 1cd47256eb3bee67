/**
 * Our own check of the key sizes and signature hashes of a server's chain.
 *
 * OpenSSL checks them too, but only at the security level of the connection,
 * and the TLS policy lowers that level to 0 when TLSv1 or TLSv1.1 is allowed
 * (OpenSSL 3 refuses those versions otherwise). This check runs whatever the
 * level: RSA and DSA keys under 2048 bits, elliptic curves under 224 bits,
 * and MD2/MD4/MD5/SHA-1 signatures are refused. The signature of a
 * self-signed root is not checked: nothing relies on it, the trust store
 * vouches for the root itself.
 *
 * It does not check the chain's validity or names: Node does that before.
 */
import { X509Certificate } from "node:crypto"
import * as Der from "./der.ts"

const weakSignatures: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.2": "MD2 with RSA",
  "1.2.840.113549.1.1.3": "MD4 with RSA",
  "1.2.840.113549.1.1.4": "MD5 with RSA",
  "1.2.840.113549.1.1.5": "SHA-1 with RSA",
  "1.3.14.3.2.29": "SHA-1 with RSA",
  "1.2.840.10045.4.1": "ECDSA with SHA-1",
  "1.2.840.10040.4.3": "DSA with SHA-1",
  "1.3.14.3.2.27": "DSA with SHA-1",
}

const rsaPss = "1.2.840.113549.1.1.10"
const weakHashes: Readonly<Record<string, string>> = {
  "1.3.14.3.2.26": "SHA-1",
  "1.2.840.113549.2.5": "MD5",
}

/** The weak signature algorithm of a DER certificate, or `undefined` when it is strong. */
export const weakSignatureOf = (der: Uint8Array): string | undefined => {
  const certificate = Der.read(der)
  const [, algorithm] = Der.children(certificate)
  const [algorithmOid, parameters] = Der.children(Der.expect(algorithm, Der.Tag.sequence, "sig"))
  const id = Der.oid(Der.expect(algorithmOid, Der.Tag.oid, "signature algorithm"))
  if (id !== rsaPss) return weakSignatures[id]

  // RSASSA-PSS-params: hashAlgorithm [0] defaults to SHA-1 (RFC 4055 section 3.1).
  if (parameters === undefined || parameters.tag !== Der.Tag.sequence) return "RSA-PSS with SHA-1"
  const hashField = Der.children(parameters).find((c) => c.tag === Der.Tag.context0)
  if (hashField === undefined) return "RSA-PSS with SHA-1"
  const [hashAlgorithm] = Der.children(hashField)
  const [hashOid] = Der.children(Der.expect(hashAlgorithm, Der.Tag.sequence, "PSS hash"))
  const hash = weakHashes[Der.oid(Der.expect(hashOid, Der.Tag.oid, "PSS hash"))]
  return hash === undefined ? undefined : `RSA-PSS with ${hash}`
}

/** Why a certificate's public key is too weak, or `undefined` when it is strong enough. */
export const weakKeyOf = (certificate: X509Certificate): string | undefined => {
  const key = certificate.publicKey
  const details = key.asymmetricKeyDetails ?? {}
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
    case "dsa": {
      const bits = details.modulusLength ?? 0
      return bits < 2048 ? `a ${bits}-bit ${key.asymmetricKeyType.toUpperCase()} key` : undefined
    }
    case "ec": {
      const curve = details.namedCurve ?? "unknown"
      const bits = Number(/\d{3}/.exec(curve)?.[0] ?? 0)
      return bits < 224 ? `an elliptic-curve key on ${curve}` : undefined
    }
    default:
      return undefined
  }
}

/** A DER certificate's subject on one line. */
export const subjectOf = (certificate: X509Certificate): string =>
  certificate.subject.split("\n").join(", ")

/**
 * Checks a chain (leaf first, as DER) and returns what is too weak in it, or
 * `undefined` when every key and signature is strong enough.
 */
export const checkChain = (chain: ReadonlyArray<Uint8Array>): string | undefined => {
  for (const der of chain) {
    const certificate = new X509Certificate(der)
    const weakKey = weakKeyOf(certificate)
    if (weakKey !== undefined) {
      return (
        `the certificate "${subjectOf(certificate)}" has ${weakKey}; ` +
        "RSA and DSA keys need 2048 bits or more, elliptic curves 224 bits or more"
      )
    }
    const selfSigned = certificate.checkIssued(certificate)
    const weakSignature = selfSigned ? undefined : weakSignatureOf(der)
    if (weakSignature !== undefined) {
      return (
        `the certificate "${subjectOf(certificate)}" is signed with ${weakSignature}, ` +
        "which can be forged"
      )
    }
  }
  return undefined
}
