import { X509Certificate } from "node:crypto"
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { fixturePath, readFixture, type SmtpTestServer, startSmtpServer } from "@spoc-mail/testkit"
import { Effect, Layer } from "effect"
import * as Terminal from "effect/Terminal"
import { Command } from "effect/cli"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { keytoolList } from "../../../packages/core/test/support/keytool.ts"
import { trustCommand } from "../src/commands/trust.ts"

const root = new X509Certificate(readFixture("pki/root-ca.der"))
const unrelated = new X509Certificate(readFixture("pki/unrelated-ca.crt"))

let scratch: string
const servers: Array<SmtpTestServer> = []
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "spoc-trust-cli-"))
})
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
  rmSync(scratch, { recursive: true, force: true })
  process.exitCode = undefined
})

/** A terminal whose user answers `answer`, recording the questions. */
const terminal = (answer: string, questions: Array<string>) =>
  Layer.succeed(
    Terminal.Terminal,
    Terminal.make({
      columns: Effect.succeed(80),
      rows: Effect.succeed(24),
      size: Effect.die("unused"),
      readInput: Effect.die("unused"),
      readLine: Effect.succeed(answer),
      display: (text) => Effect.sync(() => void questions.push(text)),
    }),
  )

interface Run {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
  readonly questions: ReadonlyArray<string>
}

/** Runs `spoc-mail trust ...args` in this process, without SPOC_ variables or spoc.conf. */
const trust = async (args: ReadonlyArray<string>, answer = "n"): Promise<Run> => {
  const out: Array<string> = []
  const err: Array<string> = []
  const questions: Array<string> = []
  const log = vi
    .spyOn(console, "log")
    .mockImplementation((...parts) => void out.push(parts.join(" ")))
  const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    err.push(String(chunk))
    return true
  })
  try {
    await Effect.runPromise(
      Command.runWith(trustCommand, { version: "test" })([
        ...args,
        "--no-env",
        "--spoc-home",
        scratch,
      ]).pipe(
        // The test terminal first, so that it wins over Node's, which would read stdin.
        Effect.provide(terminal(answer, questions)),
        Effect.provide(NodeServices.layer),
      ),
    )
  } finally {
    log.mockRestore()
    write.mockRestore()
  }
  const exitCode = typeof process.exitCode === "number" ? process.exitCode : 0
  process.exitCode = undefined
  return { stdout: out.join("\n"), stderr: err.join(""), exitCode, questions }
}

const copy = (fixture: string, name = fixture) => {
  const path = join(scratch, name)
  copyFileSync(fixturePath(`pki/${fixture}`), path)
  return path
}

describe("spoc-mail trust list", () => {
  it("shows alias, subject, issuer, expiry and SHA-256 fingerprint of each entry", async () => {
    const store = copy("multi.jks")
    const run = await trust(["list", "--store", store])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain(`Trust store ${store} (JKS), 2 entries`)
    expect(run.stdout).toContain("spoc-test-root  (trusted certificate)")
    expect(run.stdout).toContain("  subject:  CN=Spoc Mail Test Root CA")
    expect(run.stdout).toContain("  issuer:   CN=Unrelated Test CA")
    expect(run.stdout).toContain(`  expires:  ${new Date(root.validTo).toISOString().slice(0, 10)}`)
    expect(run.stdout).toContain(`  SHA-256:  ${unrelated.fingerprint256}`)
  })

  it("prints JSON with --json", async () => {
    const run = await trust(["list", "--store", copy("ssl-truststore.p12"), "--json"])
    const listing = JSON.parse(run.stdout)
    expect(listing.format).toBe("PKCS12")
    expect(listing.entries[0]).toMatchObject({
      alias: "spoc-test-root",
      fingerprint256: root.fingerprint256,
      kind: "trustedCertificate",
    })
  })

  it("fails with the trust store's exit code and names the file on a wrong password", async () => {
    const store = copy("ssl-truststore")
    const run = await trust(["list", "--store", store, "--store-type", "PKCS12"])
    expect(run.exitCode).toBe(12)
    expect(run.stderr).toContain(store)
    expect(run.stderr).toContain("trustStoreType is PKCS12")
  })

  it("with --json, still prints a JSON document when the store cannot be read", async () => {
    const store = copy("ssl-truststore")
    const run = await trust(["list", "--json", "--store", store, "--store-type", "PKCS12"])
    expect(run.exitCode).toBe(12)
    const document = JSON.parse(run.stdout) as {
      error: { kind: string; exitCode: number; message: string }
    }
    expect(document.error).toMatchObject({ kind: "TrustStoreError", exitCode: 12 })
    expect(document.error.message).toContain(store)
  })
})

describe("spoc-mail trust import and remove", () => {
  it("imports into a JKS store that keytool then lists, and removes again", async () => {
    const store = copy("ssl-truststore", "ssl-truststore")
    const imported = await trust([
      "import",
      "--store",
      store,
      "--alias",
      "unrelated",
      "--file",
      fixturePath("pki/unrelated-ca.crt"),
    ])
    expect(imported.exitCode).toBe(0)
    expect(imported.stdout).toContain(`SHA-256:  ${unrelated.fingerprint256}`)
    expect(keytoolList(store).entries.map((e) => e.alias)).toEqual(["spoc-test-root", "unrelated"])

    const removed = await trust(["remove", "--store", store, "--alias", "unrelated"])
    expect(removed.exitCode).toBe(0)
    expect(keytoolList(store).entries.map((e) => e.alias)).toEqual(["spoc-test-root"])
  })

  it("creates a PKCS12 store when asked", async () => {
    const store = join(scratch, "conf", "..", "new.p12")
    const run = await trust([
      "import",
      "--store",
      store,
      "--alias",
      "root",
      "--file",
      fixturePath("pki/root-ca.der"),
      "--create",
      "PKCS12",
    ])
    expect(run.exitCode).toBe(0)
    expect(keytoolList(store).entries).toEqual([
      { alias: "root", type: "trustedCertEntry", fingerprint256: root.fingerprint256 },
    ])
  })
})

describe("spoc-mail trust fetch", () => {
  const chainWithRoot = {
    key: readFixture("pki/server.key", "utf8"),
    cert: readFixture("pki/server.chain.crt", "utf8") + readFixture("pki/root-ca.crt", "utf8"),
  }

  it("prints the chain an SSL_TLS server presents and that it is not trusted yet", async () => {
    const server = await startSmtpServer({ tls: "implicit" })
    servers.push(server)
    const run = await trust([
      "fetch",
      "--store",
      join(scratch, "none.p12"),
      "--host",
      "localhost",
      "--port",
      String(server.port),
      "--mode",
      "SSL_TLS",
    ])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain("presents 2 certificate(s)")
    expect(run.stdout).toContain("subject:  CN=localhost")
    expect(run.stdout).toContain("subject:  CN=Spoc Mail Test Intermediate CA")
    expect(run.stdout).toContain("Not trusted now")
  })

  it("refuses to import when the server does not send its root", async () => {
    const server = await startSmtpServer({ tls: "implicit" })
    servers.push(server)
    const store = join(scratch, "new.p12")
    const run = await trust([
      "fetch",
      ...["--store", store, "--host", "localhost", "--port", String(server.port)],
      ...["--mode", "SSL_TLS", "--alias", "root", "--yes", "--create", "PKCS12"],
    ])
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('the missing root is "CN=Spoc Mail Test Root CA"')
  })

  it("imports the root over STARTTLS once confirmed, then trusts the server", async () => {
    const server = await startSmtpServer({ tls: "starttls", certificate: chainWithRoot })
    servers.push(server)
    const store = copy("unrelated-only.jks", "store.jks")
    const target = ["--host", "localhost", "--port", String(server.port), "--mode", "STARTTLS"]

    const declined = await trust(
      ["fetch", "--store", store, ...target, "--alias", "mail-root"],
      "n",
    )
    expect(declined.questions[0]).toContain(root.fingerprint256)
    expect(declined.stdout).toContain("Not imported.")
    expect(readFileSync(store)).toEqual(readFixture("pki/unrelated-only.jks"))

    const accepted = await trust(
      ["fetch", "--store", store, ...target, "--alias", "mail-root"],
      "y",
    )
    expect(accepted.exitCode).toBe(0)
    expect(accepted.stdout).toContain("Imported into")
    expect(
      keytoolList(store)
        .entries.map((e) => e.alias)
        .sort(),
    ).toEqual(["mail-root", "unrelated"])

    const again = await trust(["fetch", "--store", store, ...target])
    expect(again.stdout).toContain("trusts this chain")
  })

  it("imports without asking with --yes", async () => {
    const server = await startSmtpServer({ tls: "implicit", certificate: chainWithRoot })
    servers.push(server)
    const store = join(scratch, "store.pem")
    const run = await trust([
      "fetch",
      ...["--store", store, "--host", "localhost", "--port", String(server.port)],
      ...["--mode", "SSL_TLS", "--alias", "mail-root", "--yes", "--create", "PEM"],
    ])
    expect(run.exitCode).toBe(0)
    expect(run.questions).toEqual([])
    expect(readFileSync(store, "utf8")).toContain("# alias: mail-root")
  })

  it("says STARTTLS is not offered on a plain port", async () => {
    const server = await startSmtpServer({ tls: "none" })
    servers.push(server)
    const run = await trust([
      "fetch",
      ...["--store", join(scratch, "x.p12"), "--host", "127.0.0.1", "--port", String(server.port)],
      ...["--mode", "STARTTLS"],
    ])
    expect(run.exitCode).toBe(6)
    expect(run.stderr).toContain("does not offer STARTTLS")
  })

  it("reports a refused connection as a connection failure", async () => {
    const server = await startSmtpServer({ tls: "implicit" })
    const port = server.port
    await server.close()
    const run = await trust([
      "fetch",
      ...["--store", join(scratch, "x.p12"), "--host", "127.0.0.1", "--port", String(port)],
      ...["--mode", "SSL_TLS"],
    ])
    expect(run.exitCode).toBe(4)
    expect(run.stderr).toContain("refused the connection")
  })
})
