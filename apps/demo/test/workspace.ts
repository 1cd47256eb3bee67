/**
 * A scratch controller for one test: a temporary folder, the SMTP servers the
 * test starts, and a spoc.conf writer with defaults that trust the fixture
 * root. Everything is removed after each test.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fixturePath, type SmtpTestServer, startSmtpServer } from "@spoc-mail/testkit"
import { afterEach, beforeEach } from "vitest"

/** A password with a non-ASCII character, so UTF-8 handling is exercised too. */
export const password = "Tr0ub4dor&3-p€ss"

/** The forms a password could leak in: itself, its base64, the AUTH PLAIN blob. */
export const secretsIn = (text: string, user = "svc", secret = password): Array<string> =>
  [
    secret,
    Buffer.from(secret).toString("base64"),
    Buffer.from(`\0${user}\0${secret}`).toString("base64"),
  ].filter((s) => text.includes(s))

type Settings = Record<string, string | number>

export const useWorkspace = (prefix: string, defaults: Settings) => {
  let dir = ""
  let servers: Array<SmtpTestServer> = []
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), `spoc-${prefix}-`))
  })
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()))
    servers = []
    rmSync(dir, { recursive: true, force: true })
  })

  return {
    /** A path inside this test's folder. */
    path: (name: string) => join(dir, name),
    start: async (options: Parameters<typeof startSmtpServer>[0]): Promise<SmtpTestServer> => {
      const server = await startSmtpServer(options)
      servers.push(server)
      return server
    },
    /** Writes spoc.conf (CRLF, as on Windows) with the defaults under `settings`. */
    writeConf: (settings: Settings): string => {
      const path = join(dir, "spoc.conf")
      const body = Object.entries({
        trustStorePath: fixturePath("pki/root-ca.crt"),
        mailSmtpConnectionTimeout: 3000,
        mailSmtpTimeout: 5000,
        ...defaults,
        ...settings,
      })
        .map(([key, value]) => `${key} = ${value}`)
        .join("\r\n")
      writeFileSync(path, body)
      return path
    },
  }
}
