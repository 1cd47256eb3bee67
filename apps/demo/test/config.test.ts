import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fixturePath } from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { runCli } from "./cli.ts"

const dirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "spoc-config-"))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe("spoc-mail config", () => {
  it("shows each key with its layer, origin and the value it shadowed", async () => {
    const result = await runCli(
      ["config", "--spoc-conf", fixturePath("spoc-conf/01-branch-override.spoc.conf")],
      { SPOC_MAILFROM: "print@example.com", SPOC_MAIL_SMTP_PORT: "2525" },
    )

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(
      /^mailserver\s+smtp-brn01\.example\.com\s+spoc\.conf \(01-branch-override\.spoc\.conf:\d+\)/m,
    )
    expect(result.stdout).toMatch(/^mailfrom\s+print@example\.com\s+env \(SPOC_MAILFROM\)/m)
    expect(result.stdout).toMatch(
      /^mailSmtpPort\s+2525\s+env \(SPOC_MAIL_SMTP_PORT\)\s+shadows spoc\.conf: 465; default: 25/m,
    )
    expect(result.stdout).toMatch(/^mailSmtpTimeout\s+20000\s+spoc\.conf/m)
  })

  it("never prints a secret, only whether it is set", async () => {
    const conf = join(tempDir(), "spoc.conf")
    writeFileSync(conf, "mailserver = smtp.example.com\nmailpass = conf-Secret-1\n")

    for (const json of [[], ["--json"]]) {
      const result = await runCli(["config", "--spoc-conf", conf, ...json], {
        SPOC_MAILFROM: "print@example.com",
        SPOC_MAILUSER: "svc",
        SPOC_MAILPASS: "env-Secret-2",
        SPOC_TRUST_STORE_PASSWORD: "store-Secret-3",
      })

      const output = result.stdout + result.stderr
      for (const secret of ["conf-Secret-1", "env-Secret-2", "store-Secret-3"]) {
        expect(output).not.toContain(secret)
        expect(output).not.toContain(Buffer.from(secret).toString("base64"))
      }
      if (json.length === 0) expect(result.stdout).toMatch(/^mailpass\s+\(set\)/m)
      else {
        expect(JSON.parse(result.stdout).settings.mailpass).toMatchObject({
          value: null,
          secret: true,
          set: true,
        })
      }
    }
  })

  it("prints JSON with provenance, and exits 3 when a message could not be sent", async () => {
    const result = await runCli([
      "config",
      "--no-env",
      "--json",
      "--spoc-conf",
      fixturePath("spoc-conf/01-branch-override.spoc.conf"),
    ])

    expect(result.code).toBe(3)
    const parsed = JSON.parse(result.stdout)
    expect(parsed.sendable).toBe(false)
    expect(parsed.settings.mailSmtpPort).toMatchObject({ value: "465", layer: "spoc.conf" })
    expect(parsed.problems.map((p: { key: string }) => p.key)).toEqual(["mailfrom"])
  })

  it("names the file and line of a bad value, and every problem at once", async () => {
    const conf = join(tempDir(), "spoc.conf")
    writeFileSync(conf, "mailserver = smtp.example.com\r\nmailSmtpPort = 70000\r\n")

    const result = await runCli(["config", "--no-env", "--spoc-conf", conf])

    expect(result.code).toBe(3)
    expect(result.stdout).toMatch(/mailSmtpPort: "70000" is not a port number \(.*spoc\.conf:2\)/)
    expect(result.stdout).toMatch(/mailfrom: is not set/)
  })

  it("says which spoc.conf is missing and how to fix it", async () => {
    const missing = join(tempDir(), "nowhere", "spoc.conf")

    const result = await runCli(["config", "--no-env", "--spoc-conf", missing])

    expect(result.code).toBe(3)
    expect(result.stderr).toContain(missing)
    expect(result.stderr).toMatch(/How to fix:/)
  })

  it("exits 3 like any setting when SPOC_MANAGEMENT_TOKEN_FILE cannot be read", async () => {
    const dir = tempDir()
    const conf = join(dir, "spoc.conf")
    writeFileSync(conf, "mailserver = 127.0.0.1\r\n")
    const missing = join(dir, "token.txt")

    const result = await runCli(["config", "--spoc-conf", conf], {
      SPOC_MANAGEMENT_SERVER: "http://127.0.0.1:9/",
      SPOC_MANAGEMENT_TOKEN_FILE: missing,
    })

    expect(result.code).toBe(3)
    expect(result.stderr).toContain(`SPOC_MANAGEMENT_TOKEN_FILE names ${missing}`)
    expect(result.stderr).toMatch(/How to fix: point SPOC_MANAGEMENT_TOKEN_FILE/)
  })

  it("reads the warnings of a tricky file", async () => {
    const result = await runCli([
      "config",
      "--no-env",
      "--spoc-conf",
      fixturePath("spoc-conf/04-tricky-values.spoc.conf"),
    ])

    expect(result.stdout).toMatch(
      /unknown key "mailSmtpEncription".*did you mean mailSmtpEncryption/,
    )
    expect(result.stdout).toMatch(/mailfrom: .*04-tricky-values\.spoc\.conf:5/)
    expect(result.stdout).not.toContain("pa#ss;w0rd!")
  })
})

describe("spoc-mail config --source", () => {
  it("stacks a config-source plugin under the environment", async () => {
    const settings = join(tempDir(), "settings.json")
    writeFileSync(settings, '{\n  "mailserver": "json.example.com",\n  "mailSmtpPort": "587"\n}\n')

    const result = await runCli(
      ["config", "--source", `@spoc-mail/example-json-file-source=${settings}`],
      { SPOC_MAIL_SMTP_PORT: "2525" },
    )

    expect(result.stdout).toMatch(/Layers, highest first: env > json-file > default/)
    expect(result.stdout).toMatch(
      /^mailserver\s+json\.example\.com\s+json-file \(settings\.json:2\)/m,
    )
    expect(result.stdout).toMatch(/^mailSmtpPort\s+2525\s+env .*shadows json-file: 587/m)
  })

  it("names a plugin that cannot be loaded and exits 2", async () => {
    const result = await runCli(["config", "--no-env", "--source", "./no-such-plugin.js"])

    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/plugin \.\/no-such-plugin\.js cannot be loaded/)
  })
})
