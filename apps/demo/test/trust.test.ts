import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  fixturePath,
  Script,
  type ScriptedSmtpServer,
  type SmtpTestServer,
  startScriptedSmtpServer,
  startSmtpServer,
} from "@spoc-mail/testkit"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { runCli } from "./cli.ts"

let dir: string
const closers: Array<() => Promise<void>> = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "spoc-trust-"))
})
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
  rmSync(dir, { recursive: true, force: true })
})

const smtp = async (options: Parameters<typeof startSmtpServer>[0]): Promise<SmtpTestServer> => {
  const server = await startSmtpServer(options)
  closers.push(server.close)
  return server
}

const scripted = async (
  options: Parameters<typeof startScriptedSmtpServer>[0],
): Promise<ScriptedSmtpServer> => {
  const server = await startScriptedSmtpServer(options)
  closers.push(server.close)
  return server
}

/** A spoc.conf without mailfrom: a fetch does not need one. */
const writeConf = (lines: Record<string, string | number>): string => {
  const path = join(dir, "spoc.conf")
  const body = Object.entries({ mailserver: "127.0.0.1", ...lines })
    .map(([k, v]) => `${k} = ${v}`)
    .join("\n")
  writeFileSync(path, body)
  return path
}

const trust = (args: ReadonlyArray<string>) =>
  runCli(["trust", ...args, "--no-env", "--spoc-home", dir])

describe("spoc-mail trust fetch uses the settings it needs", () => {
  it("takes the connection timeout from spoc.conf although mailfrom is unset", async () => {
    // An implicit-TLS port: silent until a ClientHello, so STARTTLS never gets a greeting.
    const server = await scripted({ implicitTls: {}, script: [Script.silent()] })
    const conf = writeConf({
      mailSmtpPort: server.port,
      mailSmtpEncryption: "STARTTLS",
      mailSmtpConnectionTimeout: 1500,
    })

    const started = Date.now()
    const run = await trust(["fetch", "--spoc-conf", conf, "--store", join(dir, "x.p12")])

    // The default timeout is 10 s; the configured one is 1.5 s.
    expect(Date.now() - started).toBeLessThan(8_000)
    expect(run.code).toBe(5)
    expect(run.stderr).toContain("Could not fetch the server's certificate chain")
    expect(run.stderr).not.toContain("message")
    expect(run.stderr).toContain(
      `server 127.0.0.1:${server.port}: the server sent no greeting within 1500 ms ` +
        "(mailSmtpConnectionTimeout) (GreetingTimeout, during greeting)",
    )
    expect(run.stderr).toContain("try --mode SSL_TLS")
  })

  it("takes the TLS versions and suites from spoc.conf although mailfrom is unset", async () => {
    const server = await smtp({ tls: "implicit", minVersion: "TLSv1.3", maxVersion: "TLSv1.3" })
    const conf = writeConf({
      mailSmtpPort: server.port,
      mailSmtpEncryption: "SSL_TLS",
      cryptographicProtocolsForOutboundCommunication: "TLSv1.2,TLSv1.3",
      allowCustomCipherSuitesForOutboundCommunication: "true",
      customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    })

    const capped = await trust(["fetch", "--spoc-conf", conf, "--store", join(dir, "x.p12")])
    expect(capped.code).toBe(6)
    expect(capped.stderr).toContain("(TlsVersionMismatch, during tls)")
    expect(capped.stderr).toContain(
      "customCipherSuitesForOutboundCommunication has no suite for TLSv1.3",
    )

    writeConf({
      mailSmtpPort: server.port,
      mailSmtpEncryption: "SSL_TLS",
      cryptographicProtocolsForOutboundCommunication: "TLSv1.2,TLSv1.3",
    })
    const open = await trust(["fetch", "--spoc-conf", conf, "--store", join(dir, "x.p12")])
    expect(open.stderr).toBe("")
    expect(open.code).toBe(0)
    expect(open.stdout).toContain(`127.0.0.1:${server.port} (SSL_TLS, TLSv1.3) presents`)
  })

  it("still refuses a bad value of a key it needs, naming the key", async () => {
    const conf = writeConf({ mailSmtpPort: 2525, mailSmtpConnectionTimeout: "soon" })
    const run = await trust(["fetch", "--spoc-conf", conf, "--store", join(dir, "x.p12")])
    expect(run.code).toBe(3)
    expect(run.stderr).toContain("mailSmtpConnectionTimeout")
  })

  it("shows IPv6 addresses of a certificate as ::1", async () => {
    const server = await smtp({ host: "127.0.0.2", tls: "implicit", certificate: "server" })
    const run = await trust([
      "fetch",
      ...["--store", fixturePath("pki/root-ca.crt"), "--host", "127.0.0.2"],
      ...["--port", String(server.port)],
      ...["--mode", "SSL_TLS"],
    ])
    expect(run.stdout).toContain(
      "Not trusted now: the server's certificate is issued for localhost, smtp.test, " +
        "127.0.0.1, ::1, not for 127.0.0.2.",
    )
    expect(run.stdout + run.stderr).not.toContain("0:0:0:0:0:0:0:1")
  })
})

describe("spoc-mail trust import", () => {
  const storeWithRoot = () => {
    const store = join(dir, "store.p12")
    copyFileSync(fixturePath("pki/ssl-truststore.p12"), store)
    return store
  }

  it("a certificate already in the store is a note with its alias, exit 0", async () => {
    const store = storeWithRoot()
    const before = readFileSync(store)
    const run = await trust([
      "import",
      ...["--store", store, "--alias", "again", "--file", fixturePath("pki/root-ca.crt")],
    ])
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    expect(run.stdout).toContain(
      `Nothing to do: ${store} already holds this certificate under the alias ` +
        "spoc-test-root (not added as again)",
    )
    expect(readFileSync(store)).toEqual(before)
  })

  it("a --file that is not a certificate is a usage error naming --file", async () => {
    const store = storeWithRoot()
    const key = fixturePath("pki/server.key")
    const run = await trust(["import", "--store", store, "--alias", "k", "--file", key])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(`--file ${key} is not a PEM or DER certificate`)
    expect(run.stderr).not.toContain("Cannot use the trust store")

    const missing = join(dir, "nope.crt")
    const absent = await trust(["import", "--store", store, "--alias", "k", "--file", missing])
    expect(absent.code).toBe(2)
    expect(absent.stderr).toContain(`--file ${missing} does not exist`)
  })

  it("imports a certificate that is not a CA, warning that a root CA is wanted", async () => {
    const store = storeWithRoot()
    const run = await trust([
      "import",
      ...["--store", store, "--alias", "leaf", "--file", fixturePath("pki/server.crt")],
    ])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("Imported into")
    expect(run.stderr).toMatch(/^warning: "CN=localhost" is not a CA certificate/)
    expect(run.stderr).toContain("import the root CA of its chain instead")

    const root = await trust([
      "import",
      ...["--store", store, "--alias", "other", "--file", fixturePath("pki/unrelated-ca.crt")],
    ])
    expect(root.code).toBe(0)
    expect(root.stderr).toBe("")
  })

  it("warns that an expired certificate trusts nothing", async () => {
    const store = storeWithRoot()
    const run = await trust([
      "import",
      ...["--store", store, "--alias", "old", "--file", fixturePath("pki/expired.crt")],
    ])
    expect(run.code).toBe(0)
    expect(run.stderr).toMatch(/warning: "[^"]+" expired on \d{4}-\d\d-\d\dT/)
  })

  it("a store that does not exist names --create", async () => {
    const store = join(dir, "new.p12")
    const run = await trust([
      "import",
      ...["--store", store, "--alias", "root", "--file", fixturePath("pki/root-ca.crt")],
    ])
    expect(run.code).toBe(12)
    expect(run.stderr).toContain(`Cannot use the trust store ${store}: does not exist`)
    expect(run.stderr).toContain("--create PKCS12")
  })
})
