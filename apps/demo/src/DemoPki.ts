/**
 * The demo's own certificate authority, made fresh at every start with
 * @peculiar/x509 (a certificate library; no hand-rolled ASN.1): a root CA and
 * one leaf per demo server, each issued for exactly the loopback names it is
 * reached by. The root goes into the demo controller's trust store, so the
 * demo verifies certificates the way production does.
 *
 * Keys are ECDSA P-256: quick to make, and modern servers use them.
 */
import { webcrypto } from "node:crypto"
import "reflect-metadata"
import * as x509 from "@peculiar/x509"

x509.cryptoProvider.set(webcrypto as never)

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const

export interface IssuedCertificate {
  /** Leaf certificate followed by nothing else: the root is the trust anchor. */
  readonly certPem: string
  readonly keyPem: string
}

export interface DemoPki {
  readonly rootPem: string
  readonly issue: (names: ReadonlyArray<string>) => Promise<IssuedCertificate>
}

const toPem = (der: ArrayBuffer, label: string): string => {
  const base64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
  return `-----BEGIN ${label}-----\n${base64.trimEnd()}\n-----END ${label}-----\n`
}

const validity = (): { notBefore: Date; notAfter: Date } => {
  const now = Date.now()
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + 24 * 3600_000) }
}

const isIp = (name: string): boolean => /^[\d.]+$/.test(name) || name.includes(":")

/** Makes a root CA and returns a way to issue server certificates under it. */
export const makeDemoPki = async (): Promise<DemoPki> => {
  const rootKeys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  const rootName = "CN=spoc-mail demo root CA, O=spoc-mail demo"
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: rootName,
    keys: rootKeys as never,
    signingAlgorithm: algorithm,
    ...validity(),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey as never),
    ],
  })

  const issue = async (names: ReadonlyArray<string>): Promise<IssuedCertificate> => {
    const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
    const leaf = await x509.X509CertificateGenerator.create({
      subject: `CN=${names[0]}, O=spoc-mail demo`,
      issuer: root.subject,
      publicKey: keys.publicKey as never,
      signingKey: rootKeys.privateKey as never,
      signingAlgorithm: algorithm,
      ...validity(),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(
          names.map((name) => ({ type: isIp(name) ? "ip" : "dns", value: name })),
        ),
        await x509.AuthorityKeyIdentifierExtension.create(root),
      ],
    })
    const pkcs8 = await webcrypto.subtle.exportKey(
      "pkcs8",
      (keys as webcrypto.CryptoKeyPair).privateKey,
    )
    return { certPem: leaf.toString("pem") + "\n", keyPem: toPem(pkcs8, "PRIVATE KEY") }
  }

  return { rootPem: root.toString("pem") + "\n", issue }
}
