/**
 * The shared test PKI (packages/testkit/fixtures/pki, made by openssl and
 * keytool, never regenerated here) and throwaway certificates for the cases
 * the fixtures do not cover: weak keys and SHA-1 signatures, made with
 * node-forge under a CA of their own.
 */
import { generateKeyPairSync } from "node:crypto"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import forge from "node-forge"

export const pkiDir = fileURLToPath(new URL("../../../testkit/fixtures/pki/", import.meta.url))

export const pkiPath = (name: string): string => `${pkiDir}${name}`

export const pki = (name: string): Buffer => readFileSync(pkiPath(name))

export const pkiText = (name: string): string => pki(name).toString("utf8")

export interface Issued {
  readonly certPem: string
  readonly keyPem: string
}

const rsaKeys = (bits: number) => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits })
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString()
  const forgeKey = forge.pki.privateKeyFromPem(keyPem)
  const forgePublic = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e)
  return { keyPem, forgeKey, forgePublic }
}

let serial = 1

const build = (options: {
  readonly subject: string
  readonly publicKey: forge.pki.PublicKey
  readonly issuer: { readonly name: string; readonly key: forge.pki.PrivateKey } | undefined
  readonly signingKey: forge.pki.PrivateKey
  readonly ca: boolean
  readonly altNames?: ReadonlyArray<{ type: number; value?: string; ip?: string }>
  readonly hash: "sha1" | "sha256"
}): string => {
  const cert = forge.pki.createCertificate()
  cert.publicKey = options.publicKey
  cert.serialNumber = (serial++).toString(16).padStart(2, "0")
  cert.validity.notBefore = new Date(Date.now() - 86_400_000)
  cert.validity.notAfter = new Date(Date.now() + 10 * 365 * 86_400_000)
  cert.setSubject([{ name: "commonName", value: options.subject }])
  cert.setIssuer([{ name: "commonName", value: options.issuer?.name ?? options.subject }])
  cert.setExtensions([
    { name: "basicConstraints", cA: options.ca, critical: true },
    options.ca
      ? { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true }
      : { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
    ...(options.altNames === undefined
      ? []
      : [
          { name: "subjectAltName", altNames: options.altNames },
          { name: "extKeyUsage", serverAuth: true },
        ]),
  ])
  const md = options.hash === "sha1" ? forge.md.sha1.create() : forge.md.sha256.create()
  cert.sign(options.signingKey as forge.pki.rsa.PrivateKey, md)
  return forge.pki.certificateToPem(cert)
}

/** A throwaway CA and leaves for 127.0.0.1, some deliberately weak. */
export const makeWeakPki = () => {
  const ca = rsaKeys(2048)
  const caName = "Spoc Mail Throwaway CA"
  const caPem = build({
    subject: caName,
    publicKey: ca.forgePublic,
    issuer: undefined,
    signingKey: ca.forgeKey,
    ca: true,
    hash: "sha256",
  })
  const leaf = (bits: number, hash: "sha1" | "sha256"): Issued => {
    const keys = rsaKeys(bits)
    return {
      keyPem: keys.keyPem,
      certPem: build({
        subject: "127.0.0.1",
        publicKey: keys.forgePublic,
        issuer: { name: caName, key: ca.forgeKey },
        signingKey: ca.forgeKey,
        ca: false,
        altNames: [{ type: 7, ip: "127.0.0.1" }],
        hash,
      }),
    }
  }
  return {
    caPem,
    strong: leaf(2048, "sha256"),
    smallKey: leaf(1024, "sha256"),
    sha1Signed: leaf(2048, "sha1"),
  }
}
