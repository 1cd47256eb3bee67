import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigSource, Origin, Settings } from "@spoc-mail/core"
import { configSourceContract } from "@spoc-mail/testkit/contracts"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { afterAll, describe, expect, it } from "vitest"
import * as EnvSource from "../src/EnvSource.ts"

const folder = mkdtempSync(join(tmpdir(), "spoc-env-test-"))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

const secretFile = (name: string, bytes: string | Uint8Array): string => {
  const path = join(folder, name)
  writeFileSync(path, bytes)
  return path
}

type Env = Record<string, string | undefined>

const load = (env: Env, options: Omit<EnvSource.EnvSourceOptions, "env"> = {}) =>
  Effect.runPromise(EnvSource.make({ ...options, env }).load)

const failure = async (env: Env): Promise<ConfigSource.ConfigSourceError> => {
  const result = await Effect.runPromise(Effect.result(EnvSource.make({ env }).load))
  if (result._tag === "Success") throw new Error("loaded")
  return result.failure
}

const said = (snapshot: ConfigSource.SourceSnapshot, key: string) => {
  const found = snapshot.entries.find((e) => e.key === key)
  if (found === undefined) return undefined
  return found.value._tag === "Set" ? ConfigSource.reveal(found.value.value) : found.value._tag
}

configSourceContract("env", {
  make: (settings) =>
    EnvSource.make({
      env: Object.fromEntries(
        Object.entries(settings).map(([key, raw]) => [EnvSource.variableOf(key), raw]),
      ),
    }),
  makeUnreadable: () =>
    EnvSource.make({ env: { SPOC_MAILPASS_FILE: join(folder, "no-such-secret") } }),
})

describe("variable names", () => {
  it("are SPOC_ plus the key in upper snake case", () => {
    expect(EnvSource.variableOf("mailserver")).toBe("SPOC_MAILSERVER")
    expect(EnvSource.variableOf("mailSmtpPort")).toBe("SPOC_MAIL_SMTP_PORT")
    expect(EnvSource.variableOf("cryptographicProtocolsForOutboundCommunication")).toBe(
      "SPOC_CRYPTOGRAPHIC_PROTOCOLS_FOR_OUTBOUND_COMMUNICATION",
    )
    expect(EnvSource.variableOf("mailSmtpPort", "PRINTER_")).toBe("PRINTER_MAIL_SMTP_PORT")
  })

  it("read every catalogue key from its variable", async () => {
    const env = Object.fromEntries(
      Settings.settingKeys.map((key) => [EnvSource.variableOf(key), `value of ${key}`]),
    )
    const snapshot = await load(env)

    expect(snapshot.layer).toBe("env")
    expect(snapshot.entries.map((e) => e.key)).toEqual([...Settings.settingKeys])
    for (const entry of snapshot.entries) {
      expect(entry.origin).toEqual(Origin.env(EnvSource.variableOf(entry.key)))
    }
    expect(snapshot.warnings).toEqual([])
  })

  it("use another prefix when asked", async () => {
    const snapshot = await load({ PRINTER_MAILSERVER: "a.example" }, { prefix: "PRINTER_" })
    expect(said(snapshot, "mailserver")).toBe("a.example")
  })
})

describe("values", () => {
  it("are kept as strings, with only a trailing CR removed", async () => {
    const snapshot = await load({
      SPOC_MAIL_SMTP_PORT: "465\r",
      SPOC_MAILFROM: "Print Room <p@example.com>",
      SPOC_MAILSERVERBACKUP: "false",
      SPOC_MAILUSER: " svc\tuser ",
    })
    expect(said(snapshot, "mailSmtpPort")).toBe("465")
    expect(said(snapshot, "mailfrom")).toBe("Print Room <p@example.com>")
    expect(said(snapshot, "mailserverbackup")).toBe("false")
    expect(said(snapshot, "mailuser")).toBe(" svc\tuser ")
  })

  it("inherit when empty and force empty with [EMPTY]", async () => {
    const snapshot = await load({
      SPOC_MAILUSER: "",
      SPOC_MAILPASS: "[EMPTY]",
      SPOC_MAILFROM: "\r",
    })
    expect(said(snapshot, "mailuser")).toBe("Inherit")
    expect(said(snapshot, "mailpass")).toBe("ForceEmpty")
    expect(said(snapshot, "mailfrom")).toBe("Inherit")
  })

  it("of secrets are Redacted", async () => {
    const snapshot = await load({ SPOC_MAILPASS: "hunter2", SPOC_TRUST_STORE_PASSWORD: "st0re" })
    for (const key of ["mailpass", "trustStorePassword"]) {
      const value = snapshot.entries.find((e) => e.key === key)!.value
      expect(value._tag === "Set" && Redacted.isRedacted(value.value)).toBe(true)
    }
    expect(JSON.stringify(snapshot)).not.toMatch(/hunter2|st0re/)
  })

  it("are read from process.env at each load by default", async () => {
    const source = EnvSource.make()
    process.env.SPOC_MAILSERVER = "first.example"
    try {
      const first = await Effect.runPromise(source.load)
      process.env.SPOC_MAILSERVER = "second.example"
      const second = await Effect.runPromise(source.load)
      expect(said(first, "mailserver")).toBe("first.example")
      expect(said(second, "mailserver")).toBe("second.example")
    } finally {
      delete process.env.SPOC_MAILSERVER
    }
  })
})

describe("NAME_FILE", () => {
  it("reads the value from the file, without its final line break", async () => {
    const snapshot = await load({
      SPOC_MAILPASS_FILE: secretFile("mailpass", "pa#ss;w0rd!\n"),
      SPOC_MAILUSER_FILE: secretFile("mailuser", "\uFEFFsvc-print\r\n"),
      SPOC_MAILSERVER_FILE: secretFile("mailserver", "smtp.example.com"),
    })
    expect(said(snapshot, "mailpass")).toBe("pa#ss;w0rd!")
    expect(said(snapshot, "mailuser")).toBe("svc-print")
    expect(said(snapshot, "mailserver")).toBe("smtp.example.com")
    const pass = snapshot.entries.find((e) => e.key === "mailpass")!
    expect(pass.origin).toEqual(Origin.env("SPOC_MAILPASS_FILE", join(folder, "mailpass")))
    expect(Origin.format(pass.origin)).toBe(`SPOC_MAILPASS_FILE (${join(folder, "mailpass")})`)
    expect(pass.value._tag === "Set" && Redacted.isRedacted(pass.value.value)).toBe(true)
  })

  it("removes only one line break, so a second one reaches validation", async () => {
    const snapshot = await load({ SPOC_MAILUSER_FILE: secretFile("two-lines", "svc\n\n") })
    expect(said(snapshot, "mailuser")).toBe("svc\n")
  })

  it("lets an empty file inherit and an [EMPTY] file force empty", async () => {
    const snapshot = await load({
      SPOC_MAILPASS_FILE: secretFile("empty", ""),
      SPOC_MAILUSER_FILE: secretFile("forced", "[EMPTY]\n"),
    })
    expect(said(snapshot, "mailpass")).toBe("Inherit")
    expect(said(snapshot, "mailuser")).toBe("ForceEmpty")
  })

  it("fails naming the variable when the file is missing", async () => {
    const path = join(folder, "absent")
    const error = await failure({ SPOC_MAILPASS_FILE: path })

    expect(error.layer).toBe("env")
    expect(error.location).toBe("SPOC_MAILPASS_FILE")
    expect(error.message).toBe(`SPOC_MAILPASS_FILE names ${path}, which does not exist`)
    expect(error.fix).toMatch(/SPOC_MAILPASS_FILE/)
  })

  it("fails when the file is a folder or too large to be a setting", async () => {
    expect((await failure({ SPOC_MAILPASS_FILE: folder })).message).toMatch(
      /which is not a regular file/,
    )
    const big = secretFile("big", "x".repeat(EnvSource.maxFileBytes + 1))
    expect((await failure({ SPOC_MAILPASS_FILE: big })).message).toMatch(/is larger than/)
  })

  it("fails when the file is not UTF-8, without showing its bytes", async () => {
    const path = secretFile("latin1", Buffer.from("pässwörd", "latin1"))
    const error = await failure({ SPOC_MAILPASS_FILE: path })
    expect(error.message).toMatch(/not valid UTF-8/)
    expect(error.message).not.toMatch(/p.ssw.rd/)
  })

  it("fails when a setting is given both directly and by file", async () => {
    const error = await failure({
      SPOC_MAILPASS: "inline",
      SPOC_MAILPASS_FILE: secretFile("both", "from-file"),
    })
    expect(error.message).toBe("SPOC_MAILPASS and SPOC_MAILPASS_FILE are both set")
    expect(error.message + error.fix).not.toMatch(/inline|from-file/)
  })

  it("is ignored when empty, and ignores an empty direct variable", async () => {
    const snapshot = await load({
      SPOC_MAILUSER: "svc",
      SPOC_MAILUSER_FILE: "",
      SPOC_MAILPASS: "",
      SPOC_MAILPASS_FILE: secretFile("only-file", "s3cret"),
    })
    expect(said(snapshot, "mailuser")).toBe("svc")
    expect(said(snapshot, "mailpass")).toBe("s3cret")
  })
})

describe("unknown SPOC_ variables", () => {
  const messages = async (env: Env, options = {}) =>
    (await load(env, options)).warnings.map((w) => `${w.message}; ${w.fix}`)

  it("are reported with a did-you-mean", async () => {
    expect(await messages({ SPOC_MAIL_SMTP_PROT: "25", SPOC_MAILSERVER_BACKUP: "b" })).toEqual([
      "SPOC_MAIL_SMTP_PROT is not a spoc-mail setting and is ignored; " +
        "did you mean SPOC_MAIL_SMTP_PORT?",
      "SPOC_MAILSERVER_BACKUP is not a spoc-mail setting and is ignored; " +
        "did you mean SPOC_MAILSERVERBACKUP?",
    ])
    expect(await messages({ SPOC_MAILPAS_FILE: "/x" })).toEqual([
      "SPOC_MAILPAS_FILE is not a spoc-mail setting and is ignored; " +
        "did you mean SPOC_MAILPASS_FILE?",
    ])
  })

  it("never show the value, which may be a misnamed password", async () => {
    const snapshot = await load({ SPOC_MAILPAS: "hunter2", SPOC_MAIL_PASS_FILE: "/run/hunter3" })
    expect(snapshot.warnings.map((w) => w.fix)).toEqual([
      "did you mean SPOC_MAILPASS?",
      "did you mean SPOC_MAILPASS_FILE?",
    ])
    expect(JSON.stringify(snapshot)).not.toMatch(/hunter/)
  })

  it("suggest the upper-case name for a lower-case one", async () => {
    const warnings = (await load({ spoc_mailserver: "a.example" }, { caseInsensitive: false }))
      .warnings
    expect(warnings.map((w) => w.fix)).toEqual(["did you mean SPOC_MAILSERVER?"])
    expect(warnings[0]!.origin).toEqual(Origin.env("spoc_mailserver"))
  })

  it("say how names are made when nothing is close", async () => {
    expect(await messages({ SPOC_COLOUR: "blue" })).toEqual([
      "SPOC_COLOUR is not a spoc-mail setting and is ignored; remove it; setting variables " +
        "are SPOC_ plus the key in upper snake case, such as SPOC_MAIL_SMTP_PORT",
    ])
  })

  it("leave alone the variables the application reads itself", async () => {
    expect(
      await messages(
        {
          SPOC_HOME: "/opt/spoc",
          SPOC_MANAGEMENT_SERVER: "https://ms.example.com",
          SPOC_CONTROLLER_ID: "c1",
          SPOC_MANAGEMENT_TOKEN_FILE: "/run/secrets/ms-token",
          SPOC_PRINTER_QUEUE: "q1",
          PATH: "/usr/bin",
        },
        { applicationVariables: ["PRINTER_QUEUE"] },
      ),
    ).toEqual([])
  })
})

describe("case", () => {
  it("is ignored when asked (as on Windows)", async () => {
    const snapshot = await load({ Spoc_MailServer: "a.example" }, { caseInsensitive: true })
    expect(said(snapshot, "mailserver")).toBe("a.example")
    expect(snapshot.entries[0]!.origin).toEqual(Origin.env("Spoc_MailServer"))
    expect(snapshot.warnings).toEqual([])
  })
})

describe("the service layer", () => {
  it("provides the same source", async () => {
    const snapshot = await Effect.runPromise(
      Effect.gen(function* () {
        const source = yield* EnvSource.EnvSource
        return yield* source.load
      }).pipe(Effect.provide(EnvSource.layer({ env: { SPOC_MAILSERVER: "a.example" } }))),
    )
    expect(said(snapshot, "mailserver")).toBe("a.example")
  })
})
