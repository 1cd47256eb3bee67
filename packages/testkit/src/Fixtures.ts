/**
 * The testkit's fixtures: a test PKI, spoc.conf files saved by Windows-style
 * editors and a Management Server configuration, all made by real tools and
 * kept byte for byte (see `fixtures/README.md`). This module only finds and
 * reads them; it never writes or regenerates a fixture.
 *
 * Paths resolve from this module's own URL, so they work the same from the
 * TypeScript sources (`src/`) and from the published bundle (`dist/`): both
 * sit one folder below the package root, next to `fixtures/`.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const fixturesRoot = new URL("../fixtures/", import.meta.url)

/** The absolute path of a fixture, such as `fixturePath("pki/root-ca.crt")`. */
export const fixturePath = (relative: string): string => {
  if (relative.startsWith("/") || relative.split(/[\\/]/).includes("..")) {
    throw new Error(
      `fixturePath("${relative}"): give a path inside the fixtures folder, ` +
        'such as "pki/server.crt"',
    )
  }
  return fileURLToPath(new URL(relative, fixturesRoot))
}

/** The bytes of a fixture. */
export function readFixture(relative: string): Buffer
/** The text of a fixture in the given encoding. */
export function readFixture(relative: string, encoding: BufferEncoding): string
export function readFixture(relative: string, encoding?: BufferEncoding): Buffer | string {
  const bytes = readFileSync(fixturePath(relative))
  return encoding === undefined ? bytes : bytes.toString(encoding)
}

/** The leaf certificates of the fixture PKI (see `fixtures/README.md`). */
export type CertificateName =
  "server" | "backup" | "wrong-host" | "expired" | "server-ecdsa" | "self-signed"

/** A key and a certificate chain, both PEM: what a TLS server presents. */
export interface KeyPair {
  readonly key: string
  readonly cert: string
}

/** A fixture leaf by name, or a key pair given as PEM text. */
export type CertificateChoice = CertificateName | KeyPair

/**
 * The key and chain a server presents for a fixture leaf: the leaf with its
 * intermediate, so a client that trusts only `root-ca.crt` can verify it.
 * `self-signed` is a lone self-signed leaf for localhost (key: server.key).
 */
export const certificate = (choice: CertificateChoice): KeyPair => {
  if (typeof choice !== "string") return choice
  if (choice === "self-signed") {
    return {
      key: readFixture("pki/server.key", "utf8"),
      cert: readFixture("pki/self-signed.crt", "utf8"),
    }
  }
  return {
    key: readFixture(`pki/${choice}.key`, "utf8"),
    cert: readFixture(`pki/${choice}.chain.crt`, "utf8"),
  }
}

/** The fixture root CA as PEM: the `ca` a client needs to verify the fixture leaves. */
export const rootCa = (): string => readFixture("pki/root-ca.crt", "utf8")
