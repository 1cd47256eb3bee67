// C17: environment values are strings, parsed strictly by core resolution, and every
// problem names the variable it came from.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Origin, SettingsResolution } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import * as EnvSource from "../src/EnvSource.ts"

const base = { SPOC_MAILSERVER: "smtp.example.com", SPOC_MAILFROM: "print@example.com" }

const resolveEnv = (env: Record<string, string>) =>
  Effect.runPromise(
    SettingsResolution.load([EnvSource.make({ env: { ...base, ...env } })], {
      exists: () => false,
    }),
  )

const problemOf = async (env: Record<string, string>) => {
  const resolution = await resolveEnv(env)
  expect(resolution.settings).toBeUndefined()
  expect(resolution.problems).toHaveLength(1)
  return resolution.problems[0]!
}

const allowCustom = "SPOC_ALLOW_CUSTOM_CIPHER_SUITES_FOR_OUTBOUND_COMMUNICATION"

describe("C17: environment values are strings, parsed strictly", () => {
  it('reads SPOC_MAIL_SMTP_PORT="465\\r" as 465', async () => {
    const resolution = await resolveEnv({ SPOC_MAIL_SMTP_PORT: "465\r" })
    expect(resolution.problems).toEqual([])
    expect(resolution.settings!.port).toBe(465)
  })

  it('refuses "46five" as a config error naming the variable', async () => {
    const problem = await problemOf({ SPOC_MAIL_SMTP_PORT: "46five" })

    expect(problem).toMatchObject({ key: "mailSmtpPort", layer: "env" })
    expect(problem.origin).toEqual(Origin.env("SPOC_MAIL_SMTP_PORT"))
    expect(SettingsResolution.formatProblem(problem)).toBe(
      'mailSmtpPort: "46five" is not a port number (env, SPOC_MAIL_SMTP_PORT). ' +
        "Fix: use a whole number from 1 to 65535, such as 25, 465 or 587",
    )
  })

  it("refuses other numbers that are not whole, in range or plain", async () => {
    for (const raw of ["70000", "0", "-25", "2.5e1", "0x19", "25 25"]) {
      const problem = await problemOf({ SPOC_MAIL_SMTP_PORT: raw })
      expect(problem.origin, raw).toEqual(Origin.env("SPOC_MAIL_SMTP_PORT"))
    }
    const timeout = await problemOf({ SPOC_MAIL_SMTP_TIMEOUT: "10s" })
    expect(timeout.origin).toEqual(Origin.env("SPOC_MAIL_SMTP_TIMEOUT"))
  })

  it("accepts true/false/yes/no/1/0 in any case for booleans", async () => {
    const cases: Array<[string, boolean]> = [
      ["true", true],
      ["TRUE", true],
      ["yes", true],
      ["Yes", true],
      ["1", true],
      ["false", false],
      ["False", false],
      ["no", false],
      ["NO", false],
      ["0", false],
      ["false\r", false],
    ]
    for (const [raw, expected] of cases) {
      const resolution = await resolveEnv({ [allowCustom]: raw })
      expect(resolution.problems, JSON.stringify(raw)).toEqual([])
      expect(resolution.settings!.allowCustomCipherSuites, JSON.stringify(raw)).toBe(expected)
    }
  })

  it("refuses anything else for booleans, naming the variable", async () => {
    for (const raw of ["on", "off", "y", "n", "t", "2", "maybe", "truee", "1.0"]) {
      const problem = await problemOf({ [allowCustom]: raw })
      expect(problem.key, raw).toBe("allowCustomCipherSuitesForOutboundCommunication")
      expect(problem.origin, raw).toEqual(Origin.env(allowCustom))
      expect(problem.fix).toMatch(/true or false/)
    }
  })

  it("parses modes in any case and refuses unknown ones, naming the variable", async () => {
    const resolution = await resolveEnv({ SPOC_MAIL_SMTP_ENCRYPTION: "ssl/tls\r" })
    expect(resolution.settings!.encryption).toBe("SSL_TLS")

    const problem = await problemOf({ SPOC_MAIL_SMTP_ENCRYPTION: "TLS" })
    expect(problem.origin).toEqual(Origin.env("SPOC_MAIL_SMTP_ENCRYPTION"))
    expect(problem.fix).toMatch(/STARTTLS_REQUIRED/)
  })

  it('keeps "false" a string where a string is meant', async () => {
    const resolution = await resolveEnv({
      SPOC_MAILUSER: "false",
      SPOC_MAILPASS: "0",
      SPOC_MAIL_SMTP_ENCRYPTION: "SSL_TLS",
    })
    expect(resolution.settings!.credentials?.user).toBe("false")
  })

  it("names the file variable when a value read from a file is refused", async () => {
    const folder = mkdtempSync(join(tmpdir(), "spoc-c17-"))
    try {
      const path = join(folder, "port")
      writeFileSync(path, "46five\n")
      const problem = await problemOf({ SPOC_MAIL_SMTP_PORT_FILE: path })
      expect(problem.origin).toEqual(Origin.env("SPOC_MAIL_SMTP_PORT_FILE", path))
      expect(SettingsResolution.formatProblem(problem)).toContain("SPOC_MAIL_SMTP_PORT_FILE")
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })

  it("refuses a password with a line break and never shows it", async () => {
    const problem = await problemOf({
      SPOC_MAILUSER: "svc",
      SPOC_MAILPASS: "hun\nter2",
      SPOC_MAIL_SMTP_ENCRYPTION: "SSL_TLS",
    })
    expect(problem.origin).toEqual(Origin.env("SPOC_MAILPASS"))
    expect(JSON.stringify(problem) + SettingsResolution.formatProblem(problem)).not.toMatch(
      /hun|ter2/,
    )
  })
})

describe("the env layer stacked over others", () => {
  it("wins where set, inherits where empty, and says which variable won", async () => {
    const below = EnvSource.make({
      env: { SPOC_MAILSERVER: "central.example.com", SPOC_MAIL_SMTP_PORT: "25" },
    })
    const resolution = await Effect.runPromise(
      SettingsResolution.load([
        EnvSource.make({ env: { SPOC_MAIL_SMTP_PORT: "587", SPOC_MAILSERVER: "" } }),
        { ...below, layer: "below" },
      ]),
    )
    const port = resolution.provenance.find((p) => p.key === "mailSmtpPort")!
    expect(port.layer).toBe("env")
    expect(Origin.format(port.origin)).toBe("SPOC_MAIL_SMTP_PORT")
    const server = resolution.provenance.find((p) => p.key === "mailserver")!
    expect(server.value).toEqual({ _tag: "Text", text: "central.example.com" })
  })

  it("reports an unknown variable in the resolution's warnings", async () => {
    const resolution = await resolveEnv({ SPOC_MAIL_SMTP_PROT: "25" })
    expect(resolution.warnings).toEqual([
      expect.objectContaining({
        layer: "env",
        key: "SPOC_MAIL_SMTP_PROT",
        fix: "did you mean SPOC_MAIL_SMTP_PORT?",
      }),
    ])
  })
})
